import CScanKernels
import Crypto
import Testing

@testable import ConsentGate

private func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
}

private func reference(_ data: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: data)) }

@Suite struct SHA256StreamTests {
  @Test func knownVectors() {
    var s = SHA256Stream()
    Array("abc".utf8).withUnsafeBytes { s.update($0) }
    #expect(
      hexString(s.finalize())
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      hexString(SHA256Stream().finalize())
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
  }

  /// Every length across the padding's edges (55, 56, 63, 64 bytes…), in pieces of every
  /// shape, against swift-crypto.
  @Test func matchesSwiftCryptoForEveryLengthAndSplit() {
    for length in 0...300 {
      let data = bytes(length, seed: UInt64(length))
      let expected = reference(data)
      for piece in [1, 7, 63, 64, 65, 300] {
        var s = SHA256Stream()
        data.withUnsafeBytes { raw in
          var at = 0
          while at < length {
            let n = min(piece, length - at)
            s.update(UnsafeRawBufferPointer(rebasing: raw[at..<(at + n)]))
            at += n
          }
        }
        #expect(s.finalize() == expected, "length \(length), pieces of \(piece)")
        #expect(s.count == UInt64(length))
      }
    }
  }

  /// Two streams advanced together give each its own digest, whatever their lengths and
  /// unfinished blocks.
  @Test func twoLanesGiveTheDigestsOfOne() {
    var rng = SplitMix64(seed: 42)
    for _ in 0..<200 {
      let x = bytes(Int(rng.next() % 5_000), seed: rng.next())
      let y = bytes(Int(rng.next() % 5_000), seed: rng.next())
      // A head start of a few bytes, so that the lanes start mid-block.
      let hx = min(x.count, Int(rng.next() % 70))
      let hy = min(y.count, Int(rng.next() % 70))
      var a = SHA256Stream()
      var b = SHA256Stream()
      x.withUnsafeBytes { a.update(UnsafeRawBufferPointer(rebasing: $0[0..<hx])) }
      y.withUnsafeBytes { b.update(UnsafeRawBufferPointer(rebasing: $0[0..<hy])) }
      x.withUnsafeBytes { rx in
        y.withUnsafeBytes { ry in
          SHA256Stream.update(
            &a, UnsafeRawBufferPointer(rebasing: rx[hx...]), &b,
            UnsafeRawBufferPointer(rebasing: ry[hy...]))
        }
      }
      #expect(a.finalize() == reference(x))
      #expect(b.finalize() == reference(y))
      #expect(a.count == UInt64(x.count) && b.count == UInt64(y.count))
    }
  }

  /// Without SHA extensions the stream runs on swift-crypto; paired with a hardware stream it
  /// hashes each alone. Both keep their digests and counts.
  @Test func fallbackStreamsKeepTheirDigests() {
    let x = bytes(10_000, seed: 5)
    let y = bytes(7_777, seed: 6)
    var a = SHA256Stream(forcingFallback: ())
    var b = SHA256Stream()
    x.withUnsafeBytes { rx in
      y.withUnsafeBytes { ry in
        a.update(UnsafeRawBufferPointer(rebasing: rx[0..<100]))
        SHA256Stream.update(
          &a, UnsafeRawBufferPointer(rebasing: rx[100...]), &b, UnsafeRawBufferPointer(ry))
      }
    }
    #expect(a.finalize() == reference(x))
    #expect(b.finalize() == reference(y))
    #expect(a.count == 10_000 && b.count == 7_777)
  }

  /// The SHA-NI block functions (one and two lanes) against the portable one, from states
  /// that are not the initial one.
  @Test func hardwareBlocksMatchPortable() {
    let data = bytes(64 * 50, seed: 9)
    let other = bytes(64 * 50, seed: 10)
    let start: [UInt32] = (0..<8).map { UInt32(truncatingIfNeeded: $0 &* 0x9E37_79B9 &+ 1) }
    var portable = start
    var one = start
    var twoA = start
    var twoB = start
    var portableB = start
    data.withUnsafeBufferPointer { d in
      other.withUnsafeBufferPointer { o in
        cg_sha256_blocks_portable(&portable, d.baseAddress, 50)
        cg_sha256_blocks_portable(&portableB, o.baseAddress, 50)
        cg_sha256_blocks(&one, d.baseAddress, 50)
        cg_sha256_blocks_x2(&twoA, d.baseAddress, &twoB, o.baseAddress, 50)
      }
    }
    #expect(one == portable)
    #expect(twoA == portable)
    #expect(twoB == portableB)
  }
}
