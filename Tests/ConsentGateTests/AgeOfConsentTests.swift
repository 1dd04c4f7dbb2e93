import Foundation
import Testing

@testable import ConsentGate

/// SPEC §13.2: the age of digital consent, defined once, with effective dates.
@Suite struct AgeOfConsentTests {
  @Test(arguments: [
    ("BE", "2024-05-01", 13), ("GB", "2024-05-01", 13), ("NO", "2020-01-01", 13),
    ("AT", "2024-05-01", 14), ("ES", "2024-05-01", 14), ("LT", "2018-05-25", 14),
    ("CZ", "2024-05-01", 15), ("FR", "2024-05-01", 15), ("GR", "2024-05-01", 15),
    ("SI", "2023-01-25", 16), ("SI", "2023-01-26", 15),
    ("DK", "2023-12-31", 13), ("DK", "2024-01-01", 15),
    ("DE", "2024-05-01", 16), ("NL", "2024-05-01", 16), ("LI", "2024-05-01", 16),
    ("CH", "2024-05-01", 16), ("HR", "2024-05-01", 16),
    // Territories and aliases take their state's value.
    ("GF", "2024-05-01", 15), ("RE", "2024-05-01", 15), ("FX", "2024-05-01", 15),
    ("AX", "2024-05-01", 13), ("IC", "2024-05-01", 14), ("EA", "2024-05-01", 14),
    ("EL", "2024-05-01", 15), ("UK", "2024-05-01", 13),
    // Subdivisions take their state's, except territories of their own (16).
    ("FR-75", "2024-05-01", 15), ("es-cn", "2024-05-01", 14), (" dk-84 ", "2023-06-01", 13),
    ("FR-BL", "2024-05-01", 16), ("NL-AW", "2024-05-01", 16), ("FR-PF", "2024-05-01", 16),
  ])
  func ageInForceOnTheDate(_ code: String, _ day: String, _ age: Int) {
    #expect(AgeOfConsent.age(for: code, on: day) == age, "\(code) on \(day)")
  }

  /// Dated rows of one state never overlap and leave no day uncovered between them.
  @Test func datedRowsOfAStateMeetWithoutOverlap() {
    for code in Set(AgeOfConsent.rules.map(\.code)) {
      let rows = AgeOfConsent.rules.filter { $0.code == code }
      guard rows.count > 1 else { continue }
      #expect(rows.first?.from == nil && rows.last?.until == nil, "\(code)")
      for (a, b) in zip(rows, rows.dropFirst()) {
        let until = Timestamp.parseRFC3339(a.until! + "T00:00:00Z")!
        let from = Timestamp.parseRFC3339(b.from! + "T00:00:00Z")!
        #expect(from.seconds - until.seconds == 86_400, "\(code)")
      }
    }
  }

  @Test func rulesChildrenPrintsTheTableAsJSON() throws {
    let r = cg(["rules", "--children", "--json"])
    #expect(r.status == 0)
    let json = try #require(
      try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any])
    #expect(json["default"] as? Int == 16)
    let ages = try #require(json["ages"] as? [[String: Any]])
    let dk = ages.filter { $0["code"] as? String == "DK" }
    #expect(dk.count == 2)
    #expect(dk[0]["age"] as? Int == 13 && dk[0]["until"] as? String == "2023-12-31")
    #expect(dk[0]["from"] is NSNull)
    #expect(dk[1]["age"] as? Int == 15 && dk[1]["from"] as? String == "2024-01-01")
    #expect(dk[1]["until"] is NSNull)
    let same = try #require(json["same_as"] as? [String: String])
    #expect(same["GF"] == "FR" && same["AX"] == "FI" && same["EL"] == "GR" && same["UK"] == "GB")
    let text = cg(["rules", "--children"])
    #expect(text.status == 0)
    #expect(String(decoding: text.stdout, as: UTF8.self).contains("SI    15   2023-01-26"))
  }
}
