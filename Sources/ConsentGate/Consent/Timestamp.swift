/// An instant, exact to every fractional digit: RFC 3339 fractions of any length compare
/// exactly (SPEC §7 "Times", §8).
public struct Timestamp: Sendable, Hashable, Comparable {
  /// Whole seconds since 1970-01-01T00:00:00Z.
  public var seconds: Int64
  /// Fraction digits 1–18, in units of 10⁻¹⁸ s.
  public var fraction: UInt64
  /// Fraction digits 19–36, in units of 10⁻³⁶ s.
  public var subFraction: UInt64
  /// Fraction digits from the 37th on, as ASCII digits without trailing zeros; nil when
  /// there are none (almost always: the common case stays free of allocation).
  public var extraDigits: [UInt8]?

  public init(
    seconds: Int64, fraction: UInt64 = 0, subFraction: UInt64 = 0, extraDigits: [UInt8]? = nil
  ) {
    self.seconds = seconds
    self.fraction = fraction
    self.subFraction = subFraction
    // Canonical form, so that equal instants are equal values.
    var extra = extraDigits ?? []
    while extra.last == UInt8(ascii: "0") { extra.removeLast() }
    self.extraDigits = extra.isEmpty ? nil : extra
  }

  public static func < (a: Timestamp, b: Timestamp) -> Bool {
    if (a.seconds, a.fraction, a.subFraction) != (b.seconds, b.fraction, b.subFraction) {
      return (a.seconds, a.fraction, a.subFraction) < (b.seconds, b.fraction, b.subFraction)
    }
    // Digit strings without trailing zeros compare as their fractions do.
    return (a.extraDigits ?? []).lexicographicallyPrecedes(b.extraDigits ?? [])
  }

  /// This instant moved by whole seconds, or nil on overflow.
  public func adding(seconds delta: Int64) -> Timestamp? {
    let (sum, overflow) = seconds.addingReportingOverflow(delta)
    guard !overflow else { return nil }
    var moved = self
    moved.seconds = sum
    return moved
  }

  /// Parses RFC 3339 `date-time`: `T`/`t`, `Z`/`z` or `±hh:mm`, an optional fraction of any
  /// length. A space separator, an impossible date or second 60 is invalid.
  public static func parseRFC3339(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
    let n = bytes.count
    guard n >= 20 else { return nil }
    func digits(_ at: Int, _ count: Int) -> Int? {
      var v = 0
      for k in at..<(at + count) {
        let c = bytes[k]
        guard c >= 0x30 && c <= 0x39 else { return nil }
        v = v * 10 + Int(c - 0x30)
      }
      return v
    }
    guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"), let month = digits(5, 2),
      bytes[7] == UInt8(ascii: "-"), let day = digits(8, 2),
      bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
      let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
      bytes[16] == UInt8(ascii: ":"), let second = digits(17, 2)
    else { return nil }
    guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
      hour <= 23, minute <= 59, second <= 59
    else { return nil }
    var i = 19
    var fraction: UInt64 = 0
    var subFraction: UInt64 = 0
    var extraDigits: [UInt8]?
    if i < n && bytes[i] == UInt8(ascii: ".") {
      i += 1
      let start = i
      while i < n && isDigit(bytes[i]) {
        let d = UInt64(bytes[i] - 0x30)
        let position = i - start
        if position < 18 {
          fraction += d * pow10(17 - position)
        } else if position < 36 {
          subFraction += d * pow10(35 - position)
        }
        i += 1
      }
      guard i > start else { return nil }
      if i - start > 36 { extraDigits = Array(bytes[(start + 36)..<i]) }
    }
    guard i < n else { return nil }
    var offset = 0
    switch bytes[i] {
    case UInt8(ascii: "Z"), UInt8(ascii: "z"):
      i += 1
    case UInt8(ascii: "+"), UInt8(ascii: "-"):
      guard i + 6 <= n, let oh = digits(i + 1, 2), bytes[i + 3] == UInt8(ascii: ":"),
        let om = digits(i + 4, 2), oh <= 23, om <= 59
      else { return nil }
      offset = (oh * 60 + om) * 60 * (bytes[i] == UInt8(ascii: "-") ? -1 : 1)
      i += 6
    default:
      return nil
    }
    guard i == n else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset)
    return Timestamp(
      seconds: seconds, fraction: fraction, subFraction: subFraction, extraDigits: extraDigits)
  }

  /// Parses Unix seconds written as an optional `-` and digits, within Int64.
  public static func parseUnixDigits(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
    var i = 0
    var negative = false
    if i < bytes.count && bytes[i] == UInt8(ascii: "-") {
      negative = true
      i += 1
    }
    guard i < bytes.count else { return nil }
    var magnitude: UInt64 = 0
    while i < bytes.count {
      guard isDigit(bytes[i]) else { return nil }
      let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(UInt64(bytes[i] - 0x30))
      guard !o1 && !o2 else { return nil }
      magnitude = a
      i += 1
    }
    if negative {
      guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
      return Timestamp(seconds: magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude))
    }
    guard magnitude <= UInt64(Int64.max) else { return nil }
    return Timestamp(seconds: Int64(magnitude))
  }

  /// RFC 3339 text or Unix-seconds digits, as ledger files allow.
  public static func parseLedgerText(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
    parseRFC3339(bytes) ?? parseUnixDigits(bytes)
  }

  public static func parseRFC3339(_ text: String) -> Timestamp? {
    var s = text
    return s.withUTF8 { parseRFC3339(UnsafeRawBufferPointer($0)) }
  }

  /// UTC text `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, fraction without trailing zeros.
  public var rfc3339: String {
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = Int(seconds - days * 86_400)
    let (y, m, d) = civilFromDays(Int(days))
    func pad(_ v: Int, _ w: Int) -> String {
      let s = String(v)
      return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    var text =
      "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondOfDay / 3600, 2)):"
      + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
    if fraction != 0 || subFraction != 0 || extraDigits != nil {
      var digits = pad(Int(fraction), 18)
      if subFraction != 0 || extraDigits != nil { digits += pad(Int(subFraction), 18) }
      if let extraDigits { digits += String(decoding: extraDigits, as: UTF8.self) }
      while digits.hasSuffix("0") { digits.removeLast() }
      text += "." + digits
    }
    return text + "Z"
  }
}

private func pow10(_ e: Int) -> UInt64 {
  var v: UInt64 = 1
  for _ in 0..<e { v *= 10 }
  return v
}

func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

func daysIn(month: Int, year: Int) -> Int {
  switch month {
  case 2: isLeap(year) ? 29 : 28
  case 4, 6, 9, 11: 30
  default: 31
  }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
  let y = month <= 2 ? year - 1 : year
  let era = (y >= 0 ? y : y - 399) / 400
  let yoe = y - era * 400
  let mp = (month + 9) % 12
  let doy = (153 * mp + 2) / 5 + day - 1
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
  return era * 146_097 + doe - 719_468
}

func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
  let z = z0 + 719_468
  let era = (z >= 0 ? z : z - 146_096) / 146_097
  let doe = z - era * 146_097
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
  let y = yoe + era * 400
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
  let mp = (5 * doy + 2) / 153
  let d = doy - (153 * mp + 2) / 5 + 1
  let m = mp < 10 ? mp + 3 : mp - 9
  return (m <= 2 ? y + 1 : y, m, d)
}
