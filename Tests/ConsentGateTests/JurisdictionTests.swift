import Testing

@testable import ConsentGate

@Suite struct JurisdictionTests {
  let eea = try! ProtectionSet(items: ["eea"])
  let eu = try! ProtectionSet(items: ["eu"])

  @Test func assignedCodeListIsComplete() {
    #expect(CountryCodes.assigned.count == 249)
    #expect(CountryCodes.memberStates.count == 27)
  }

  @Test(arguments: [
    "DE", "FR", "GF", "GP", "MQ", "RE", "YT", "MF", "AX", "FX", "EL", "IC", "EA", "EU",
    "IS", "LI", "NO", "SJ", "de", " de\t", "ES-CN", "PT-20", "FR-IDF", "es-ce",
  ])
  func protectedUnderEEA(_ code: String) {
    #expect(eea.classify(code) == .protected, "\(code)")
  }

  @Test(arguments: [
    "US", "GB", "UK", "CH", "XK", "GL", "FO", "GI", "JE", "GG", "IM", "PF", "NC", "WF", "PM",
    "BL", "TF", "AW", "CW", "SX", "BQ", "FR-PF", "FR-NC", "FR-BL", "NL-AW", "NL-BQ1", "nl-bq2",
    "NL-SX", "GB-ENG",
  ])
  func notProtectedUnderEEA(_ code: String) {
    #expect(eea.classify(code) == .notProtected, "\(code)")
  }

  @Test func eeaOnlyCodesAreNotInEU() {
    for code in ["IS", "LI", "NO", "SJ"] { #expect(eu.classify(code) == .notProtected) }
  }

  @Test(arguments: [
    "SU", "AC", "CP", "DG", "TA", "UN", "AN", "YU", "XX", "ZZ", "D", "DEU", "D1", "UK-ENG",
    "EL-A", "XK-01", "DE-", "DE-ABCD", "DE_BE", "DE-B!", "12", "Deutschland",
  ])
  func invalidCodes(_ code: String) {
    #expect(eea.classify(code) == .invalid, "\(code)")
  }

  @Test(arguments: ["", "  ", "\t"]) func emptyAfterTrimmingGivesNoSignal(_ code: String) {
    #expect(eea.classify(code) == CountrySignal.none)
  }

  @Test func ukAndChSetsAndCodesListedDirectly() throws {
    let s = try ProtectionSet(items: ["uk", "ch", "us"])
    #expect(s.classify("GB") == .protected)
    #expect(s.classify("UK") == .protected)
    #expect(s.classify("GB-SCT") == .protected)
    #expect(s.classify("CH") == .protected)
    #expect(s.classify("US") == .protected)
    #expect(s.classify("DE") == .notProtected)
    let alias = try ProtectionSet(items: ["EL"])
    #expect(alias.classify("GR") == .protected)
    let country = try ProtectionSet(items: ["es"])
    #expect(country.classify("IC") == .protected)
  }

  @Test func setNameWinsOverCode() throws {
    let s = try ProtectionSet(items: ["EU"])
    #expect(s.items == ["eu"])
    #expect(s.classify("DE") == .protected)
  }

  @Test func unknownProtectItemIsRejected() {
    #expect(throws: ProtectionSet.ParseError.unknownItem("europe")) {
      try ProtectionSet(items: ["europe"])
    }
    #expect(throws: ProtectionSet.ParseError.self) { try ProtectionSet(items: ["XX"]) }
  }

  @Test func resolutionOrder() {
    var s = SignalSet()
    #expect(Jurisdiction(s) == .unknown)
    s.add(.notProtected)
    #expect(Jurisdiction(s) == .notProtected)
    s.add(.protected)
    #expect(Jurisdiction(s) == .protected)
    s.add(.invalid)
    #expect(Jurisdiction(s) == .invalid)
  }
}
