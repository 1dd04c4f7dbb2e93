import Testing

@testable import ConsentGate

/// The inline comparison that replaces `memcmp` for ids, keys and literals: every length
/// from 0 to past two words, with a difference at every position, must answer as
/// `memcmp` would, reading nothing outside either range.
@Suite struct ByteCompareTests {
  @Test func equalsMemcmpForEveryLengthAndDifferencePosition() {
    for n in 0...40 {
      // Each range is allocated at exactly its length, so that the address sanitizer run
      // catches any read past its end.
      let a = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 1)
      let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 1)
      defer {
        a.deallocate()
        b.deallocate()
      }
      for k in 0..<n {
        a[k] = UInt8(truncatingIfNeeded: 31 &* k &+ 7)
        b[k] = a[k]
      }
      #expect(bytesEqual(a.baseAddress!, b.baseAddress!, count: n))
      for k in 0..<n {
        b[k] ^= 0x20
        #expect(!bytesEqual(a.baseAddress!, b.baseAddress!, count: n), "length \(n), byte \(k)")
        b[k] ^= 0x20
      }
    }
  }
}
