import CScanKernels

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
      // The same rule the string scan applies (CScanKernels).
      let length = Int(cg_utf8_sequence(start, i, count))
      guard length > 0 else { return false }
      i += length
    }
    return true
  }

  public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    return isValid(base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
  }
}
