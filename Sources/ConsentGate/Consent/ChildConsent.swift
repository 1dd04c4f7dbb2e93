/// What the children rule (SPEC §13.2) needs of a grant: the birth date its row gave and
/// whether a parent consented, packed in 32 bits so that a user's facts stay a plain value.
public struct ChildFacts: Sendable, Hashable {
  /// Bit 31: parental consent. Bits 0–30: the birth date as days since 1970-01-01 plus
  /// ``dayBias`` plus 1; 0 when the row gave none.
  public let word: UInt32

  static let parentalBit: UInt32 = 1 << 31
  /// Puts every `YYYY-MM-DD` date (0000–9999) above zero.
  private static let dayBias = 1 << 22

  /// No birth date, no parental consent: also what a grant read without `--children check`
  /// carries.
  public static let none = ChildFacts(word: 0)

  public init(word: UInt32) { self.word = word }

  public init(birthDay: Int?, parental: Bool) {
    var w: UInt32 = parental ? ChildFacts.parentalBit : 0
    if let birthDay { w |= UInt32(birthDay + ChildFacts.dayBias + 1) }
    word = w
  }

  /// Days since 1970-01-01 of the birth date, nil when unknown.
  public var birthDay: Int? {
    let d = word & ~ChildFacts.parentalBit
    return d == 0 ? nil : Int(d) - ChildFacts.dayBias - 1
  }

  public var parentalConsent: Bool { word & ChildFacts.parentalBit != 0 }

  /// How unfavourable the grant is under the rule, for grants recorded at the same instant:
  /// the higher one stands (SPEC §13.2, the earlier code wins). Parental consent never
  /// fails; else a later birth date fails wherever an earlier one does, and an unknown one
  /// fails first under `--unknown-age child` and never under `adult`.
  func rank(unknownAge: UnknownAgeRule) -> UInt32 {
    if parentalConsent { return 0 }
    let d = word & ~ChildFacts.parentalBit
    if d == 0 { return unknownAge == .child ? UInt32.max : 0 }
    return d
  }

  /// The birth date as `YYYY-MM-DD`, nil when unknown.
  public var birthDateText: String? {
    birthDay.map(ChildFacts.dateText)
  }

  static func dateText(_ day: Int) -> String {
    let (y, m, d) = civilFromDays(day)
    func pad(_ v: Int, _ w: Int) -> String {
      let s = String(v)
      return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
  }

  /// A ledger's `birth_date`: `YYYY-MM-DD` exactly, a real date. nil for any other text.
  static func parseDate(_ b: UnsafeRawBufferPointer) -> Int? {
    guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
    func number(_ at: Int, _ n: Int) -> Int? {
      var v = 0
      for i in at..<(at + n) {
        guard isDigit(b[i]) else { return nil }
        v = v * 10 + Int(b[i] - 0x30)
      }
      return v
    }
    guard let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), m >= 1, m <= 12,
      d >= 1, d <= daysIn(month: m, year: y)
    else { return nil }
    return daysFromCivil(year: y, month: m, day: d)
  }

  /// A ledger's `parental_consent` given as text: `true` or `false` in any case, or empty for
  /// false. nil for any other text.
  static func parseParental(_ b: UnsafeRawBufferPointer) -> Bool? {
    if b.isEmpty { return false }
    let lower = b.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }
    if lower.elementsEqual("true".utf8) { return true }
    if lower.elementsEqual("false".utf8) { return false }
    return nil
  }

  /// Full years from `born` to `day` (both days since 1970-01-01): a 29 February birthday
  /// falls on 1 March in other years.
  public static func age(born: Int, on day: Int) -> Int {
    let (y, m, d) = civilFromDays(day)
    let (by, bm, bd) = civilFromDays(born)
    var birthday = (bm, bd)
    if bm == 2 && bd == 29 && !isLeap(y) { birthday = (3, 1) }
    return y - by - ((m, d) < birthday ? 1 : 0)
  }

  /// The UTC date of an instant, as days since 1970-01-01.
  public static func day(of t: Timestamp) -> Int {
    Int(t.seconds >= 0 ? t.seconds / 86_400 : (t.seconds - 86_399) / 86_400)
  }
}

/// The age rule of SPEC §13.2 for one protected user whose grant in effect is otherwise
/// valid.
public struct ChildRuleOutcome: Sendable, Equatable {
  /// The age of digital consent applied.
  public var requiredAge: Int
  /// The user's age on the grant's date, nil when the grant gave no birth date.
  public var age: Int?
  /// The grant cannot stand: `child_consent_invalid`.
  public var invalid: Bool

  /// Judges a grant recorded at `grantedAt` (nil: none, which fails closed) with `child`,
  /// for a user whose protected signals carry the age bits `ages` (0: none, or
  /// `--protect all`, so the default age).
  public init(
    child: ChildFacts, grantedAt: Timestamp?, ages: UInt8, unknownAge: UnknownAgeRule
  ) {
    let day = grantedAt.map(ChildFacts.day(of:)) ?? Int.max / 2
    requiredAge = AgeOfConsent.requiredAge(bits: ages, day: day)
    age = child.birthDay.map { ChildFacts.age(born: $0, on: day) }
    if child.parentalConsent {
      invalid = false
    } else if let age {
      invalid = age < requiredAge || grantedAt == nil
    } else {
      invalid = unknownAge == .child
    }
  }
}
