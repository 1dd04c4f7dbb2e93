import Testing

@testable import ConsentGate

/// One fixture for the rows of SPEC §3.3: a ledger, tags and a way to decide records.
struct DecisionFixture {
  static let ledger = """
    user_id,purpose,status,recorded_at,notice_version,expires_at
    granted,ai_training,granted,2024-01-01T00:00:00Z,v2,
    withdrawn,ai_training,granted,2024-01-01T00:00:00Z,v2,
    withdrawn,ai_training,withdrawn,2024-02-01T00:00:00Z,,
    objector,ai_training,objected,2024-01-01T00:00:00Z,,
    expired,ai_training,granted,2024-01-01T00:00:00Z,v2,2024-06-01T00:00:00Z
    outdated,ai_training,granted,2024-01-01T00:00:00Z,v1,
    123,ai_training,granted,2024-01-01T00:00:00Z,v2,
    """
  static let tags = """
    user_id,country
    granted,DE
    withdrawn,FR
    objector,DE
    expired,AT
    outdated,NL
    123,IT
    nobody_de,DE
    us_user,US
    us_objector,US
    bad_tag,XX
    """

  static func verdict(_ record: String, _ change: (inout PolicySettings) -> Void = { _ in })
    throws -> Verdict
  {
    let policy = try makePolicy(change)
    var ledger = Self.ledger
    ledger += "\nus_objector,ai_training,objected,2024-01-01T00:00:00Z,,\n"
    if policy.lenientLedger { ledger += "lenient,ai_training,maybe,2024-01-01T00:00:00Z,,\n" }
    let index = try loadIndex(policy: policy, ledger: ledger, tags: Self.tags + "\nlenient,DE\n")
    return decide(record, policy: policy, index: index)
  }

  static func reason(_ record: String, _ change: (inout PolicySettings) -> Void = { _ in })
    throws -> Reason
  {
    try verdict(record, change).reason
  }
}

@Suite struct DecisionTableTests {
  typealias F = DecisionFixture

  @Test func row1RecordTooLargeByLengthAlone() throws {
    let record = #"{"user_id":"granted"}"#  // 21 bytes
    #expect(try F.reason(record) { $0.maxRecordBytes = 21 } == .consented)
    #expect(try F.reason(record) { $0.maxRecordBytes = 20 } == .recordTooLarge)
    #expect(try F.reason("{\"a\":\"\u{FFFD}\"") { $0.maxRecordBytes = 3 } == .recordTooLarge)
  }

  @Test func row2InvalidUTF8EvenWhereSyntaxFailsEarlier() throws {
    let policy = try makePolicy()
    let index = try loadIndex(policy: policy)
    let decider = RecordDecider(policy: policy, index: index)
    let bytes: [UInt8] = Array("{,".utf8) + [0xFF] + Array("}".utf8)
    #expect(bytes.withUnsafeBytes { decider.decide($0) }.reason == .invalidUTF8)
  }

  @Test func row3MalformedJSON() throws {
    #expect(try F.reason(#"{"user_id":"granted""#) == .malformedJSON)
    #expect(try F.reason(#"["granted"]"#) == .malformedJSON)
  }

  @Test func row4DuplicateKeyOnConsultedPath() throws {
    #expect(try F.reason(#"{"user_id":"granted","user_id":"granted"}"#) == .duplicateKey)
    #expect(try F.reason(#"{"user_id":"granted","x":1,"x":2}"#) == .consented)
    let geo = #"{"user_id":"us_user","geo":{"country":"US","country":"US"}}"#
    #expect(try F.reason(geo) { $0.countryPath = ["/geo/country"] } == .duplicateKey)
    #expect(try F.reason(geo) == .notProtected)
  }

  @Test func row4CountryPathNotConsultedUnderAll() throws {
    let geo = #"{"user_id":"granted","geo":{"country":"US","country":"US"}}"#
    #expect(
      try F.reason(geo) {
        $0.countryPath = ["/geo/country"]
        $0.protect = ["all"]
      } == .consented)
  }

  @Test func row5MissingAndInvalidUserIds() throws {
    #expect(try F.reason(#"{"text":"x"}"#) == .missingUserID)
    #expect(try F.reason(#"{"user_id":null}"#) == .missingUserID)
    #expect(try F.reason(#"{"user_id":""}"#) == .missingUserID)
    #expect(try F.reason(#"{"user_id":1.5}"#) == .invalidUserID)
    #expect(try F.reason(#"{"user_id":1e2}"#) == .invalidUserID)
    #expect(try F.reason(#"{"user_id":true}"#) == .invalidUserID)
    #expect(try F.reason(#"{"user_id":{}}"#) == .invalidUserID)
    #expect(try F.reason(#"{"user_id":["granted"]}"#) == .invalidUserID)
    #expect(try F.reason(#"{"user_id":"\ud800"}"#) == .invalidUserID)
  }

  @Test func integerAndStringIdsAreTheSameUser() throws {
    #expect(try F.reason(#"{"user_id":123}"#) == .consented)
    #expect(try F.reason(#"{"user_id":"123"}"#) == .consented)
    #expect(try F.reason(#"{"user_id":"\u0067ranted"}"#) == .consented)
  }

  @Test func row6InvalidCountry() throws {
    #expect(try F.reason(#"{"user_id":"bad_tag"}"#) == .invalidCountry)
    let rec = #"{"user_id":"granted","geo":{"country":"Germany"}}"#
    #expect(try F.reason(rec) { $0.countryPath = ["/geo/country"] } == .invalidCountry)
    let num = #"{"user_id":"us_user","geo":{"country":49}}"#
    #expect(try F.reason(num) { $0.countryPath = ["/geo/country"] } == .invalidCountry)
    #expect(try F.reason(#"{"user_id":"bad_tag"}"#) { $0.protect = ["all"] } == .noConsent)
  }

  @Test func row6UnknownJurisdictionAsConfigured() throws {
    let rec = #"{"user_id":"granted_elsewhere"}"#
    #expect(try F.verdict(rec) == Verdict(reason: .unknownJurisdiction, jurisdiction: .unknown))
    #expect(try F.reason(rec) { $0.unknownJurisdiction = "protect" } == .noConsent)
    #expect(
      try F.verdict(rec) { $0.unknownJurisdiction = "allow" }
        == Verdict(reason: .notProtected, jurisdiction: .notProtected))
    let empty = #"{"user_id":"x","geo":{"country":"  "}}"#
    #expect(try F.reason(empty) { $0.countryPath = ["/geo/country"] } == .unknownJurisdiction)
  }

  @Test func recordSignalsJoinTagSignals() throws {
    let rec = #"{"user_id":"us_user","geo":{"country":"de"}}"#
    #expect(try F.reason(rec) { $0.countryPath = ["/geo/country"] } == .noConsent)
    let sub = #"{"user_id":"us_user","geo":{"country":"FR-PF"}}"#
    #expect(try F.reason(sub) { $0.countryPath = ["/geo/country"] } == .notProtected)
  }

  @Test func row7LenientLedgerError() throws {
    #expect(
      try F.reason(#"{"user_id":"lenient"}"#) { $0.lenientLedger = true } == .consentLedgerError)
  }

  @Test func row8ObjectedEverywhereByDefault() throws {
    #expect(try F.reason(#"{"user_id":"objector"}"#) == .objected)
    #expect(try F.reason(#"{"user_id":"us_objector"}"#) == .objected)
    #expect(
      try F.reason(#"{"user_id":"us_objector"}"#) { $0.objections = "protected-only" }
        == .notProtected)
    #expect(
      try F.reason(#"{"user_id":"objector"}"#) { $0.objections = "protected-only" } == .objected)
  }

  @Test func row9ProtectedWithoutValidConsent() throws {
    #expect(try F.reason(#"{"user_id":"nobody_de"}"#) == .noConsent)
    #expect(try F.reason(#"{"user_id":"withdrawn"}"#) == .withdrawn)
    #expect(try F.reason(#"{"user_id":"expired"}"#) == .consentExpired)
    #expect(
      try F.reason(#"{"user_id":"outdated"}"#) { $0.noticeVersions = ["v2"] } == .noticeOutdated)
    #expect(try F.reason(#"{"user_id":"outdated"}"#) == .consented)
  }

  @Test func row10MissingTimestampUnderSinceGrant() throws {
    let change: (inout PolicySettings) -> Void = { $0.consentCovers = "since-grant" }
    #expect(try F.reason(#"{"user_id":"granted"}"#, change) == .missingTimestamp)
    #expect(
      try F.reason(#"{"user_id":"granted","created_at":"yesterday"}"#, change) == .missingTimestamp)
    #expect(
      try F.reason(#"{"user_id":"granted","created_at":"1704067200"}"#, change) == .missingTimestamp
    )
    #expect(try F.reason(#"{"user_id":"granted","created_at":1.5}"#, change) == .missingTimestamp)
  }

  @Test func row11PredatesConsent() throws {
    let change: (inout PolicySettings) -> Void = { $0.consentCovers = "since-grant" }
    #expect(
      try F.reason(#"{"user_id":"granted","created_at":"2023-12-31T23:59:59Z"}"#, change)
        == .predatesConsent)
    #expect(
      try F.reason(#"{"user_id":"granted","created_at":1704067199}"#, change) == .predatesConsent)
    #expect(
      try F.reason(#"{"user_id":"granted","created_at":"2024-01-01T00:00:00Z"}"#, change)
        == .consented)
    #expect(try F.reason(#"{"user_id":"granted","created_at":1704067200}"#, change) == .consented)
  }

  @Test func timePathConsultedOnlyWhereRows10And11NeedIt() throws {
    let dup = #"{"user_id":"granted","created_at":1704067200,"created_at":1704067200}"#
    #expect(try F.reason(dup) == .consented)
    #expect(try F.reason(dup) { $0.consentCovers = "since-grant" } == .duplicateKey)
    let usDup = #"{"user_id":"us_user","created_at":1,"created_at":2}"#
    #expect(try F.reason(usDup) { $0.consentCovers = "since-grant" } == .notProtected)
  }

  @Test func row12And13Keep() throws {
    #expect(
      try F.verdict(#"{"user_id":"granted"}"#)
        == Verdict(reason: .consented, jurisdiction: .protected))
    #expect(
      try F.verdict(#"{"user_id":"us_user"}"#)
        == Verdict(reason: .notProtected, jurisdiction: .notProtected))
  }

  @Test func protectAllAppliesToEveryone() throws {
    #expect(try F.reason(#"{"user_id":"us_user"}"#) { $0.protect = ["all"] } == .noConsent)
    #expect(try F.reason(#"{"user_id":"untagged"}"#) { $0.protect = ["all"] } == .noConsent)
  }

  @Test func everyReasonHasOneDispositionAndCode() {
    #expect(Set(Reason.allCases.map(\.code)).count == Reason.allCases.count)
    #expect(Reason.allCases.filter { $0.disposition == .keep } == [.consented, .notProtected])
  }
}
