import CScanKernels
import Crypto

/// SHA-256 (FIPS 180-4) of a stream of bytes, on the package's own block function
/// (`cg_sha256_blocks`: SHA-NI where the CPU has it).
///
/// Why not swift-crypto's `SHA256` alone: two streams of this type can be advanced together
/// (``update(_:_:_:_:)``), their rounds interleaved. One SHA-NI stream waits on the latency of
/// its round instruction; a second fills those waits, 1.75–1.8× the throughput of the two one
/// after the other on the project's machine (`Benchmarks/sha256-lanes/`). A run hashes its
/// input and its kept output, two such streams, on the writer thread.
public struct SHA256Stream {
  private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
    0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab,
    0x5be0_cd19
  )
  /// Bytes of an unfinished block.
  private var partial: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
    0, 0, 0, 0, 0, 0, 0, 0
  )
  private var partialCount = 0
  /// Bytes hashed in all.
  public private(set) var count: UInt64 = 0
  /// swift-crypto's SHA-256, used instead where the CPU has no SHA extensions: its assembly
  /// (AVX2) runs at ~0.54 GB/s there, the portable C block function at ~0.15.
  private var fallback: SHA256?

  /// Whether this CPU has the SHA extensions (and so two lanes gain anything).
  static let hardware = cg_sha256_hw_available() != 0

  public init() {
    if !SHA256Stream.hardware { fallback = SHA256() }
  }

  /// A stream on swift-crypto whatever the CPU: for tests of the fallback.
  init(forcingFallback: Void) {
    fallback = SHA256()
  }

  /// Hashes `bytes` after what came before.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    count &+= UInt64(bytes.count)
    if fallback != nil {
      fallback!.update(bufferPointer: bytes)
      return
    }
    absorb(bytes)
  }

  /// ``update(_:)`` without the count.
  private mutating func absorb(_ bytes: UnsafeRawBufferPointer) {
    var rest = bytes
    topUp(&rest)
    let blocks = rest.count / 64
    if blocks > 0 {
      withState {
        cg_sha256_blocks($0, rest.baseAddress!.assumingMemoryBound(to: UInt8.self), blocks)
      }
      rest = UnsafeRawBufferPointer(rebasing: rest[(blocks * 64)...])
    }
    keep(rest)
  }

  /// Hashes `x` into `a` and `y` into `b`, the whole blocks both have in common two lanes at
  /// a time: the same digests as two ``update(_:)`` calls, sooner.
  public static func update(
    _ a: inout SHA256Stream, _ x: UnsafeRawBufferPointer,
    _ b: inout SHA256Stream, _ y: UnsafeRawBufferPointer
  ) {
    if a.fallback != nil || b.fallback != nil {
      a.update(x)
      b.update(y)
      return
    }
    a.count &+= UInt64(x.count)
    b.count &+= UInt64(y.count)
    var x = x
    var y = y
    a.topUp(&x)
    b.topUp(&y)
    let blocks = min(x.count, y.count) / 64
    if blocks > 0 {
      a.withState { sa in
        b.withState { sb in
          cg_sha256_blocks_x2(
            sa, x.baseAddress!.assumingMemoryBound(to: UInt8.self), sb,
            y.baseAddress!.assumingMemoryBound(to: UInt8.self), blocks)
        }
      }
      x = UnsafeRawBufferPointer(rebasing: x[(blocks * 64)...])
      y = UnsafeRawBufferPointer(rebasing: y[(blocks * 64)...])
    }
    a.absorb(x)
    b.absorb(y)
  }

  /// The digest of everything hashed; the stream is not changed.
  public func finalize() -> [UInt8] {
    if let fallback { return Array(fallback.finalize()) }
    var copy = self
    let bits = count &* 8
    var pad = [UInt8](repeating: 0, count: 72)
    pad[0] = 0x80
    // Up to the block's last 8 bytes, then the length in bits, big-endian.
    let zeros = (55 - partialCount + 64) % 64
    for k in 0..<8 { pad[1 + zeros + k] = UInt8(truncatingIfNeeded: bits >> (56 - 8 * k)) }
    pad.withUnsafeBytes { copy.update(UnsafeRawBufferPointer(rebasing: $0[0..<(9 + zeros)])) }
    precondition(copy.partialCount == 0)
    var digest = [UInt8](repeating: 0, count: 32)
    withUnsafeBytes(of: copy.state) { words in
      for k in 0..<8 {
        let w = words.load(fromByteOffset: 4 * k, as: UInt32.self)
        for j in 0..<4 { digest[4 * k + j] = UInt8(truncatingIfNeeded: w >> (24 - 8 * j)) }
      }
    }
    return digest
  }

  /// Completes an unfinished block from the front of `bytes` and hashes it; `bytes` loses
  /// what was taken.
  private mutating func topUp(_ bytes: inout UnsafeRawBufferPointer) {
    guard partialCount > 0, !bytes.isEmpty else { return }
    let n = min(64 - partialCount, bytes.count)
    withUnsafeMutableBytes(of: &partial) { p in
      p.baseAddress!.advanced(by: partialCount).copyMemory(from: bytes.baseAddress!, byteCount: n)
    }
    partialCount += n
    bytes = UnsafeRawBufferPointer(rebasing: bytes[n...])
    if partialCount == 64 {
      let block = partial
      withUnsafeBytes(of: block) { p in
        withState { cg_sha256_blocks($0, p.baseAddress!.assumingMemoryBound(to: UInt8.self), 1) }
      }
      partialCount = 0
    }
  }

  /// Keeps the last bytes of an update, fewer than a block, for the next.
  private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
    guard !bytes.isEmpty else { return }
    precondition(partialCount == 0 && bytes.count < 64)
    withUnsafeMutableBytes(of: &partial) { p in
      p.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }
    partialCount = bytes.count
  }

  private mutating func withState<R>(_ body: (UnsafeMutablePointer<UInt32>) -> R) -> R {
    withUnsafeMutableBytes(of: &state) {
      body($0.baseAddress!.assumingMemoryBound(to: UInt32.self))
    }
  }
}
