/// Whether the `count` bytes at `a` and at `b` are equal, without a call into libc: the
/// strings compared on the hot path (user ids, pointer keys, `true`/`false`/`null`) are a few
/// bytes long, where a `memcmp` call costs more than the comparison. Words are compared
/// overlapping, so no byte outside either range is read.
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count n: Int) -> Bool {
  if n >= 8 {
    var i = 0
    while i + 8 < n {
      if a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        != b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      {
        return false
      }
      i += 8
    }
    return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
      == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
  }
  if n >= 4 {
    return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
      && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
        == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
  }
  for k in 0..<n
  where a.load(fromByteOffset: k, as: UInt8.self) != b.load(fromByteOffset: k, as: UInt8.self) {
    return false
  }
  return true
}
