import CCodecs
import CZlib
import Testing

@testable import ConsentGate

/// The package's own deflate encoder (`Deflate.c`), checked against zlib's inflate: every
/// level, input shapes that reach each block type and the window's edge, determinism, its
/// bound, and a ratio at least zlib's on export-like data. Called directly, so the trait
/// builds (where gzip output goes to ISA-L or libdeflate) test it too.

/// Raw deflate of `input` at `level`, with an output buffer of exactly `capacity` bytes
/// (the bound by default) so that the ASan run catches a write past it; nil when the encoder
/// reports that it did not fit.
func builtinDeflate(_ input: [UInt8], level: Int, capacity: Int? = nil) -> [UInt8]? {
  let deflater = cg_deflater_new(Int32(level))!
  defer { cg_deflater_free(deflater) }
  let cap = capacity ?? cg_deflate_bound(input.count)
  let out = UnsafeMutablePointer<UInt8>.allocate(capacity: max(cap, 1))
  defer { out.deallocate() }
  let written = input.withUnsafeBufferPointer {
    cg_deflate_raw(deflater, $0.baseAddress, $0.count, out, cap)
  }
  return written == 0 ? nil : Array(UnsafeBufferPointer(start: out, count: written))
}

/// zlib's raw inflate of `data`; nil unless it ends the stream exactly at the data's end.
func zlibInflateRaw(_ data: [UInt8], expected count: Int) -> [UInt8]? {
  var stream = z_stream()
  guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
  else { return nil }
  defer { inflateEnd(&stream) }
  var out = [UInt8](repeating: 0, count: count + 1)
  var data = data
  let rc = data.withUnsafeMutableBufferPointer { input in
    out.withUnsafeMutableBufferPointer { output in
      stream.next_in = input.baseAddress
      stream.avail_in = UInt32(input.count)
      stream.next_out = output.baseAddress
      stream.avail_out = UInt32(output.count)
      return inflate(&stream, Z_FINISH)
    }
  }
  guard rc == Z_STREAM_END, stream.avail_in == 0 else { return nil }
  return Array(out[0..<Int(stream.total_out)])
}

/// zlib's raw deflate size of `input` at `level`.
func zlibDeflatedSize(_ input: [UInt8], level: Int) -> Int {
  var stream = z_stream()
  deflateInit2_(
    &stream, Int32(level), Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
    Int32(MemoryLayout<z_stream>.size))
  defer { deflateEnd(&stream) }
  var input = input
  var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
  input.withUnsafeMutableBufferPointer { i in
    out.withUnsafeMutableBufferPointer { o in
      stream.next_in = i.baseAddress
      stream.avail_in = UInt32(i.count)
      stream.next_out = o.baseAddress
      stream.avail_out = UInt32(o.count)
      _ = deflate(&stream, Z_FINISH)
    }
  }
  return Int(stream.total_out)
}

func randomBytes(_ count: Int, seed: UInt64, alphabet: Int = 256) -> [UInt8] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next() % UInt64(alphabet)) }
}

/// Inputs that reach each path: nothing, too short to match, stored blocks (random data,
/// split at 65,535 bytes), fixed and dynamic blocks, maximal matches, many blocks of
/// sequences, and repeats just inside and just outside the 32 KiB window.
func deflateShapes() -> [(String, [UInt8])] {
  let phrase = randomBytes(64, seed: 9)
  var window: [UInt8] = []
  for distance in [32_767, 32_768, 32_769, 32_766] {
    window += phrase + randomBytes(distance - phrase.count, seed: UInt64(distance)) + phrase
  }
  let text = Array("the quick brown fox jumps over the lazy dog; ".utf8)
  return [
    ("empty", []),
    ("one byte", [0x41]),
    ("three bytes", Array("abc".utf8)),
    ("four bytes", Array("abcd".utf8)),
    ("short repeat", Array("abcdabcdabcdabcdX".utf8)),
    ("zeros", [UInt8](repeating: 0, count: 300_000)),
    ("random", randomBytes(200_000, seed: 1)),
    ("random 65,535", randomBytes(65_535, seed: 2)),
    ("random 65,536", randomBytes(65_536, seed: 3)),
    ("two symbols", randomBytes(300_000, seed: 4, alphabet: 2)),
    ("sixteen symbols", randomBytes(300_000, seed: 5, alphabet: 16)),
    ("text", Array(text.map { $0 }.repeated(8_000))),
    ("window edge", window),
  ]
}

extension Array {
  fileprivate func repeated(_ times: Int) -> [Element] {
    (0..<times).flatMap { _ in self }
  }
}

@Suite struct DeflateTests {
  @Test(arguments: 1...9)
  func zlibInflatesEveryShapeBackToItsInput(level: Int) throws {
    for (name, input) in deflateShapes() {
      let compressed = try #require(builtinDeflate(input, level: level), "\(name)")
      #expect(compressed.count <= cg_deflate_bound(input.count), "\(name)")
      let back = zlibInflateRaw(compressed, expected: input.count)
      #expect(back.map { $0 == input } == true, "\(name): zlib did not inflate it back")
      // Bytes depend only on input and level: a second encoder writes the same.
      #expect(builtinDeflate(input, level: level) == compressed, "\(name): not deterministic")
    }
  }

  @Test func oneEncoderReusedGivesTheBytesOfFreshOnes() throws {
    // State left by one block (hash heads, frequencies) must not reach the next.
    let deflater = cg_deflater_new(6)!
    defer { cg_deflater_free(deflater) }
    for (name, input) in deflateShapes().reversed() {
      let cap = cg_deflate_bound(input.count)
      var out = [UInt8](repeating: 0, count: cap)
      let written = input.withUnsafeBufferPointer { i in
        out.withUnsafeMutableBufferPointer {
          cg_deflate_raw(deflater, i.baseAddress, i.count, $0.baseAddress, cap)
        }
      }
      #expect(
        Array(out[0..<written]) == builtinDeflate(input, level: 6), "\(name): reuse changed bytes")
    }
  }

  @Test func tooSmallAnOutputIsRefusedNotOverrun() throws {
    for (name, input) in deflateShapes() where input.count > 100 {
      let full = try #require(builtinDeflate(input, level: 6))
      #expect(builtinDeflate(input, level: 6, capacity: full.count - 1) == nil, "\(name)")
      #expect(builtinDeflate(input, level: 6, capacity: full.count / 2) == nil, "\(name)")
    }
    #expect(builtinDeflate([1, 2, 3], level: 6, capacity: 15) == nil)
    #expect(cg_deflater_new(0) == nil)
    #expect(cg_deflater_new(10) == nil)
  }

  /// A block larger than one member may hold (a kept record near `--max-record-bytes`' 2 GiB
  /// limit; the encoder takes at most 1 GiB) is written as several members: one gzip stream
  /// of the same bytes, the members those pieces give alone.
  @Test func largeBlocksBecomeSeveralMembers() throws {
    let input = randomBytes(250_000, seed: 11, alphabet: 16)
    let writer = GzipMemberWriter(level: 6, builtinMemberLimit: 100_000)
    var out: [UInt8] = []
    writer.compress(input, appendingTo: &out)
    let path = writeFile(temporaryFolder() + "/m.gz", out)
    #expect((try decodeAll(path).get() == input) == true)
    #expect(shell("gzip -t '\(path)'").status == 0)
    if writer.deflater == .builtin {
      var pieces: [UInt8] = []
      for start in stride(from: 0, to: input.count, by: 100_000) {
        pieces += gzipMember(Array(input[start..<min(start + 100_000, input.count)]), level: 6)
      }
      #expect((out == pieces) == true, "not the members of the pieces")
    }
  }

  /// What the default build's `--level N` promises: at least zlib's level-N ratio on the
  /// data it is for, in members of a pipeline block.
  @Test func exportsCompressAtLeastAsWellAsZlibAtEveryLevel() throws {
    let dir = temporaryFolder()
    let written = try generatedExport(dir, records: 4_000)
    let jsonl = try decodeAll(dir + "/" + written.exports[0]).get()
    let sample = Array(jsonl.prefix(1 << 20))
    #expect(sample.count == 1 << 20)
    for level in 1...9 {
      let ours = try #require(builtinDeflate(sample, level: level))
      let zlib = zlibDeflatedSize(sample, level: level)
      #expect(ours.count <= zlib, "level \(level): \(ours.count) bytes, zlib \(zlib)")
      let back = zlibInflateRaw(ours, expected: sample.count)
      #expect(back.map { $0 == sample } == true, "level \(level): zlib did not inflate it back")
    }
  }
}
