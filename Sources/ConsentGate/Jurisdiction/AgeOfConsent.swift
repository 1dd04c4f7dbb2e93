/// The age of digital consent (GDPR Art. 8) of each state, with the dates each value was in
/// force (SPEC §13.2). Defined once: `consentgate rules --children` prints it, and the
/// children rule of issue 21 will read it.
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
