/// The age of digital consent (GDPR Art. 8) of each state, with the dates each value was in
/// force (SPEC §13.2). Defined once: `consentgate rules --children` prints it, and the
/// children rule reads it through ``requiredAge(bits:day:)``.
public enum AgeOfConsent {
  /// Every protected code not listed, and a subdivision that is a territory of its own.
  public static let defaultAge = 16

  /// One state's age, in force from `from` to `until` (UTC dates, inclusive; nil: open).
  public struct Rule: Sendable, Equatable {
    public var code: String
    public var age: Int
    public var from: String?
    public var until: String?
  }

  public static let rules: [Rule] = {
    var list: [Rule] = []
    for code in ["BE", "EE", "FI", "LV", "MT", "PT", "SE", "IS", "NO", "GB"] {
      list.append(Rule(code: code, age: 13))
    }
    for code in ["AT", "BG", "CY", "IT", "LT", "ES"] { list.append(Rule(code: code, age: 14)) }
    for code in ["CZ", "FR", "GR"] { list.append(Rule(code: code, age: 15)) }
    list += [
      Rule(code: "SI", age: 16, until: "2023-01-25"), Rule(code: "SI", age: 15, from: "2023-01-26"),
      Rule(code: "DK", age: 13, until: "2023-12-31"), Rule(code: "DK", age: 15, from: "2024-01-01"),
    ]
    return list.sorted { ($0.code, $0.from ?? "") < ($1.code, $1.from ?? "") }
  }()

  /// Territories and aliases that take another state's value.
  public static let sameAs: [String: String] = [
    "GF": "FR", "GP": "FR", "MQ": "FR", "RE": "FR", "YT": "FR", "MF": "FR", "FX": "FR",
    "AX": "FI", "IC": "ES", "EA": "ES", "EL": "GR", "UK": "GB",
  ]

  /// The age for a protected country signal (a code, alias or `CC-xx` subdivision, any case)
  /// on the UTC date `day` (`YYYY-MM-DD`).
  public static func age(for signal: String, on day: String) -> Int {
    var code = signal.trimmingCharacters(in: [" ", "\t"]).uppercased()
    if code.count > 2 {
      // A subdivision §3.1 treats as a territory of its own is 16; any other takes its state's.
      if CountryCodes.subdivisionTerritories[code] != nil { return defaultAge }
      code = String(code.prefix(2))
    }
    code = sameAs[code] ?? code
    for rule in rules where rule.code == code {
      if let from = rule.from, day < from { continue }
      if let until = rule.until, day > until { continue }
      return rule.age
    }
    return defaultAge
  }

  /// One value of a state's age, over days since 1970-01-01 (inclusive).
  struct Span: Equatable {
    var age: Int
    var from: Int
    var until: Int
  }

  /// The distinct ways an age can run over time: schedule 0 is the default (always
  /// ``defaultAge``), each other one a state's rules. A protected country signal carries the
  /// bit of its schedule (``SignalSet/ages``), so a record's age is known without its codes.
  static let schedules: [[Span]] = {
    var list: [[Span]] = [[]]
    for code in Set(rules.map(\.code)).sorted() {
      let spans = scheduleSpans(code)
      if !list.contains(spans) { list.append(spans) }
    }
    precondition(list.count <= 8, "age schedules must fit the eight bits of SignalSet.ages")
    return list
  }()

  private static func scheduleSpans(_ code: String) -> [Span] {
    func day(_ text: String?) -> Int? {
      guard let text else { return nil }
      var t = text
      return t.withUTF8 { ChildFacts.parseDate(UnsafeRawBufferPointer($0)) }
    }
    return rules.filter { $0.code == code }.map {
      Span(age: $0.age, from: day($0.from) ?? Int.min, until: day($0.until) ?? Int.max)
    }
  }

  /// The schedule of each two-letter code, by ``ProtectionSet`` key: a code's own, or that
  /// of the state it is the same as.
  static let scheduleOfKey: [UInt8] = {
    var table = [UInt8](repeating: 0, count: 676)
    for first in UInt8(ascii: "A")...UInt8(ascii: "Z") {
      for second in UInt8(ascii: "A")...UInt8(ascii: "Z") {
        let code = String(decoding: [first, second], as: UTF8.self)
        let state = sameAs[code] ?? code
        guard rules.contains(where: { $0.code == state }) else { continue }
        let k = Int(ProtectionSet.letterKey(first, second)!)
        table[k] = UInt8(schedules.firstIndex(of: scheduleSpans(state))!)
      }
    }
    return table
  }()

  /// The age that applies on `day` (days since 1970-01-01) to a user whose protected
  /// signals carry the schedule bits `bits`: the highest; ``defaultAge`` without any.
  public static func requiredAge(bits: UInt8, day: Int) -> Int {
    if bits == 0 { return defaultAge }
    var age = 0
    var mask = bits
    while mask != 0 {
      let k = mask.trailingZeroBitCount
      mask &= mask - 1
      let spans = schedules[k]
      age = max(age, spans.first { $0.from <= day && day <= $0.until }?.age ?? defaultAge)
    }
    return age
  }

  /// `rules --children --json`.
  public static var json: JSONValue {
    .object([
      ("default", .int(Int64(defaultAge))),
      (
        "ages",
        .array(
          rules.map {
            .object([
              ("code", .string($0.code)), ("age", .int(Int64($0.age))),
              ("from", $0.from.map(JSONValue.string) ?? .null),
              ("until", $0.until.map(JSONValue.string) ?? .null),
            ])
          })
      ),
      ("same_as", .object(sameAs.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
    ])
  }

  /// `rules --children`: a table for people.
  public static var text: String {
    var lines = ["age of digital consent (GDPR Art. 8); every other protected code: \(defaultAge)"]
    lines.append("code  age  from        until")
    for r in rules {
      lines.append(
        "\(r.code)    \(r.age)   \((r.from ?? "-").padding(toLength: 10, withPad: " ", startingAt: 0))  \(r.until ?? "-")"
      )
    }
    lines.append(
      "same as: "
        + sameAs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
          separator: " "))
    lines.append(
      "a subdivision CC-xx takes CC's value; one that is a territory of its own (FR-BL, NL-AW, …) is \(defaultAge)"
    )
    return lines.joined(separator: "\n")
  }
}
