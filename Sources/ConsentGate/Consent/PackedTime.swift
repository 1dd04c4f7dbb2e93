/// A deciding `recorded_at` in one 64-bit word, as both consent indexes store it: whole
/// microseconds within ±69,000 years pack (never as 0, since seconds above -2⁴¹ make the word
/// positive); any other instant is kept aside and the word holds ``exactBit`` and its place.
enum PackedTime {
  static let exactBit: UInt64 = 1 << 63
  private static let secondsBias: Int64 = 1 << 41

  /// The packed word, or nil when `t` needs the exact form.
  static func pack(_ t: Timestamp) -> UInt64? {
    let micros = t.fraction / 1_000_000_000_000
    guard t.subFraction == 0, t.extraDigits == nil, micros * 1_000_000_000_000 == t.fraction,
      t.seconds > -secondsBias, t.seconds < secondsBias
    else { return nil }
    return UInt64(t.seconds + secondsBias) << 20 | micros
  }

  /// The instant of a word without ``exactBit``.
  static func unpack(_ word: UInt64) -> Timestamp {
    Timestamp(
      seconds: Int64(bitPattern: word >> 20) - secondsBias,
      fraction: (word & 0xF_FFFF) &* 1_000_000_000_000)
  }

  /// A place among the exact times, for a word with ``exactBit``.
  static func exactPlace(_ word: UInt64) -> Int { Int(truncatingIfNeeded: word & 0xFFFF_FFFF) }
}
