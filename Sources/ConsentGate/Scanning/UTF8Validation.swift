/// Strict UTF-8 validation (RFC 3629): rejects overlong forms, encoded surrogates
/// (ED A0..BF), code points above U+10FFFF and truncated sequences.
public enum UTF8Validation {
  /// True when all `count` bytes at `start` are well-formed UTF-8.
  public static func isValid(_ start: UnsafePointer<UInt8>, count: Int) -> Bool {
    var i = 0
    while i < count {
      // ASCII runs dominate real exports: test eight bytes at a time.
      while i + 8 <= count {
        let word = UnsafeRawPointer(start + i).loadUnaligned(as: UInt64.self)
        if word & 0x8080_8080_8080_8080 != 0 { break }
        i += 8
      }
      if i >= count { return true }
      if start[i] < 0x80 {
        i += 1
        continue
      }
      let length = sequenceLength(start, i, count)
      guard length > 0 else { return false }
      i += length
    }
    return true
  }

  /// The length of the well-formed multi-byte sequence whose lead byte is at `i`, or 0 when
  /// it is ill-formed (RFC 3629 table 3-7: no overlongs, surrogates or code points past
  /// U+10FFFF, no truncation). The lead byte must be ≥ 0x80.
  @inline(__always)
  static func sequenceLength(_ start: UnsafePointer<UInt8>, _ i: Int, _ count: Int) -> Int {
    let lead = start[i]
    let need: Int
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: need = 1
    case 0xE0:
      need = 2
      low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: need = 2
    case 0xED:
      need = 2
      high = 0x9F
    case 0xF0:
      need = 3
      low = 0x90
    case 0xF1...0xF3: need = 3
    case 0xF4:
      need = 3
      high = 0x8F
    default: return 0
    }
    guard i + need < count else { return 0 }
    let second = start[i + 1]
    guard second >= low && second <= high else { return 0 }
    var k = 2
    while k <= need {
      guard start[i + k] & 0xC0 == 0x80 else { return 0 }
      k += 1
    }
    return need + 1
  }

  public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    return isValid(base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
  }
}
