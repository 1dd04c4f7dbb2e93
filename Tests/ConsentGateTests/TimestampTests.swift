import Testing

@testable import ConsentGate

@Suite struct TimestampTests {
  @Test(arguments: [
    "2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", "2024-02-29T12:00:00+01:00",
    "2024-01-01T00:00:00.123456789012345678901Z", "1970-01-01T00:00:00-00:30",
  ])
  func acceptsRFC3339(_ text: String) {
    #expect(Timestamp.parseRFC3339(text) != nil)
  }

  @Test(arguments: [
    "2024-01-01 00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:60Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00",
    "2024-01-01T00:00:00.Z", "2024-1-01T00:00:00Z", "2024-01-01T00:00:00+0100",
    "2024-13-01T00:00:00Z", "2024-01-01", "",
  ])
  func rejectsOtherText(_ text: String) {
    #expect(Timestamp.parseRFC3339(text) == nil)
  }

  @Test func offsetsConvertToUTC() {
    #expect(
      Timestamp.parseRFC3339("2024-01-01T01:00:00+01:00")
        == Timestamp.parseRFC3339("2024-01-01T00:00:00Z"))
    #expect(Timestamp.parseRFC3339("1970-01-01T00:00:00Z")!.seconds == 0)
  }

  @Test func fractionsCompareExactly() {
    let a = Timestamp.parseRFC3339("2024-01-01T00:00:00.5Z")!
    let b = Timestamp.parseRFC3339("2024-01-01T00:00:00.500000Z")!
    let c = Timestamp.parseRFC3339("2024-01-01T00:00:00.5000000000000000000001Z")!
    #expect(a == b)
    #expect(b < c)
    #expect(Timestamp.parseRFC3339("2024-01-01T00:00:00Z")! < a)
  }

  @Test func unixSecondsWithinInt64() {
    func parse(_ s: String) -> Timestamp? {
      Array(s.utf8).withUnsafeBytes { Timestamp.parseUnixDigits($0) }
    }
    #expect(parse("1700000000")?.seconds == 1_700_000_000)
    #expect(parse("-5")?.seconds == -5)
    #expect(parse("9223372036854775807")?.seconds == .max)
    #expect(parse("-9223372036854775808")?.seconds == .min)
    #expect(parse("9223372036854775808") == nil)
    #expect(parse("1.5") == nil)
    #expect(parse("") == nil)
    #expect(parse("-") == nil)
    #expect(parse("+5") == nil)
  }

  @Test func formatsUTC() {
    #expect(Timestamp.parseRFC3339("2024-06-01T02:00:00+02:00")!.rfc3339 == "2024-06-01T00:00:00Z")
    #expect(
      Timestamp.parseRFC3339("2024-06-01T00:00:00.250Z")!.rfc3339 == "2024-06-01T00:00:00.25Z")
  }

  /// Every fraction digit counts (SPEC §8 "Times"): past the 36th too, and trailing zeros
  /// change nothing.
  @Test func fractionsCompareExactlyAtAnyLength() throws {
    func t(_ s: String) throws -> Timestamp { try #require(Timestamp.parseRFC3339(s)) }
    let whole = try t("2025-01-01T00:00:00Z")
    let d37 = try t("2025-01-01T00:00:00.0000000000000000000000000000000000001Z")
    #expect(whole < d37)
    #expect(d37 == (try t("2025-01-01T00:00:00.00000000000000000000000000000000000010000Z")))
    let a40 = try t("2025-01-01T00:00:00.1234567890123456789012345678901234567890Z")
    let b40 = try t("2025-01-01T00:00:00.1234567890123456789012345678901234567891Z")
    #expect(a40 < b40)
    #expect(!(b40 < a40))
    #expect(a40 < (try t("2025-01-01T00:00:00.12345678901234567890123456789012345679Z")))
    #expect(
      b40.rfc3339 == "2025-01-01T00:00:00.1234567890123456789012345678901234567891Z")
    #expect(d37.rfc3339 == "2025-01-01T00:00:00.0000000000000000000000000000000000001Z")
    // Moving by whole seconds keeps the digits.
    #expect(
      d37.adding(seconds: 1)!.rfc3339
        == "2025-01-01T00:00:01.0000000000000000000000000000000000001Z")
  }
}
