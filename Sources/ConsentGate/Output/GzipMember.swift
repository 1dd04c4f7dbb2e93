import CCodecs
import CZlib

/// Compresses one block into one complete gzip member.
///
/// The header has mtime 0, no file name and OS 3 (Unix), the bytes zlib writes, so the
/// output depends only on the input and the level: it is identical for any thread count and
/// any run of the same build. Members are independent, which is what lets blocks compress in
/// parallel; `gzip -d` reads the concatenation as one stream.
///
/// The codec is ``Codecs/deflater(level:)``: the package's own encoder in the default build;
/// ISA-L or libdeflate when a trait brings them in. Those write the same header bytes (ISA-L)
/// or their own fixed header (libdeflate), so the bytes still depend only on the build, the
/// level and the input.
///
/// Owns codec state at a fixed heap address, so it is a class; use one per thread.
public final class GzipMemberWriter {
  public let level: Int32
  public let deflater: Codecs.Deflater
  private var builtin: OpaquePointer?
  private var isalLevelBuffer: UnsafeMutableRawBufferPointer?
  private var libdeflate: OpaquePointer?
  /// Where members are compressed before they are appended to the caller's output. Sized up
  /// front for a pipeline block (1 MiB and a line), so compressing one allocates nothing.
  private var scratch = UnsafeMutableRawBufferPointer.allocate(
    byteCount: (1 << 20) + (1 << 18), alignment: 64)

  /// The most input one member of the built-in encoder holds; larger blocks (a kept record
  /// near `--max-record-bytes`' 2 GiB limit) become several members, since the encoder takes
  /// at most 1 GiB. Settable for tests.
  let builtinMemberLimit: Int

  /// A writer at gzip `level`, 1–9 (another level traps), with this build's codec for it,
  /// ``Codecs/deflater(level:)``. Allocates everything compressing a block needs.
  public convenience init(level: Int) {
    self.init(level: level, builtinMemberLimit: 64 << 20)
  }

  init(level: Int, builtinMemberLimit: Int) {
    self.builtinMemberLimit = builtinMemberLimit
    self.level = Int32(level)
    deflater = Codecs.deflater(level: level)
    switch deflater {
    case .builtin: break
    case .isal:
      isalLevelBuffer = .allocate(
        byteCount: cg_isal_level_buffer_size(Int32(level)), alignment: 64)
    case .libdeflate:
      libdeflate = cg_libdeflate_new(Int32(level))
      precondition(libdeflate != nil, "libdeflate could not start at level \(level)")
    }
    // Also ISA-L's fallback, for the rare block its stateless bound does not hold.
    if deflater != .libdeflate {
      builtin = cg_deflater_new(self.level)
      precondition(builtin != nil, "deflate could not start at level \(level)")
    }
  }

  deinit {
    if let builtin { cg_deflater_free(builtin) }
    isalLevelBuffer?.deallocate()
    scratch.deallocate()
    if let libdeflate { cg_libdeflate_free(libdeflate) }
  }

  /// Appends one gzip member holding `input` to `output`.
  public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) {
    switch deflater {
    case .builtin: compressWithBuiltin(input, appendingTo: &output)
    case .isal:
      // Stored blocks are the worst case: 5 bytes per 64 KiB block over the input. ISA-L
      // writes XFL "fastest" at all its levels.
      let rawBound = input.count + input.count / 1024 + 1024
      let written = appendMember(of: input, xfl: 4, rawBound: rawBound, to: &output) { out in
        cg_isal_deflate_raw(
          level, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
          out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
          isalLevelBuffer!.baseAddress!.assumingMemoryBound(to: UInt8.self), isalLevelBuffer!.count)
      }
      if !written { compressWithBuiltin(input, appendingTo: &output) }
    case .libdeflate:
      let bound = cg_libdeflate_bound(libdeflate, input.count)
      let written = appendMember(bound: bound, to: &output) { out in
        cg_libdeflate_gzip(
          libdeflate, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
          out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count)
      }
      precondition(written, "libdeflate output exceeded its own bound")
    }
  }

  /// Appends one member written by `body` into `bound` bytes of scratch space; false (and
  /// nothing appended) when it did not fit. The codec writes into the scratch buffer and only
  /// the member's bytes are copied out: growing `output` by `bound` first would zero-fill
  /// the whole worst case (more than the block) for a member a third of its size.
  private func appendMember(
    bound: Int, to output: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) -> Int
  ) -> Bool {
    if scratch.count < bound {
      scratch.deallocate()
      scratch = .allocate(byteCount: max(bound, 2 * scratch.count), alignment: 64)
    }
    let written = body(UnsafeMutableRawBufferPointer(rebasing: scratch[0..<bound]))
    guard written > 0 else { return false }
    // A typed buffer, so that the append is one memcpy rather than a byte loop.
    output.append(
      contentsOf: UnsafeBufferPointer(
        start: scratch.baseAddress!.assumingMemoryBound(to: UInt8.self), count: written))
    return true
  }

  /// Appends one gzip member of `input` whose raw deflate data `body` writes into at most
  /// `rawBound` bytes (returning their count, or 0 when they did not fit): the header zlib
  /// writes (mtime 0, no name, OS 3) with `xfl`, then the data, CRC-32 and ISIZE. False, and
  /// nothing appended, when `body` did not fit.
  private func appendMember(
    of input: UnsafeRawBufferPointer, xfl: UInt8, rawBound: Int, to output: inout [UInt8],
    _ body: (UnsafeMutableRawBufferPointer) -> Int
  ) -> Bool {
    appendMember(bound: 10 + rawBound + 8, to: &output) { out in
      let member = out.baseAddress!
      let magic: UInt32 = 0x0008_8b1f  // 1f 8b, deflate, no flags
      member.storeBytes(of: magic.littleEndian, as: UInt32.self)
      member.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)  // mtime 0
      member.storeBytes(of: xfl, toByteOffset: 8, as: UInt8.self)
      member.storeBytes(of: 3, toByteOffset: 9, as: UInt8.self)  // Unix
      let raw = body(UnsafeMutableRawBufferPointer(rebasing: out[10..<(10 + rawBound)]))
      guard raw > 0 else { return 0 }
      member.storeBytes(
        of: CRC32.update(0, input).littleEndian, toByteOffset: 10 + raw, as: UInt32.self)
      member.storeBytes(
        of: UInt32(truncatingIfNeeded: input.count).littleEndian, toByteOffset: 14 + raw,
        as: UInt32.self)
      return 10 + raw + 8
    }
  }

  private func compressWithBuiltin(
    _ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]
  ) {
    guard input.count <= builtinMemberLimit else {
      var start = 0
      while start < input.count {
        let end = min(start + builtinMemberLimit, input.count)
        compressWithBuiltin(
          UnsafeRawBufferPointer(rebasing: input[start..<end]), appendingTo: &output)
        start = end
      }
      return
    }
    // zlib's XFL for the same level: "fastest" at 1, "best" at 9.
    let xfl: UInt8 = level == 1 ? 4 : level == 9 ? 2 : 0
    let written = appendMember(
      of: input, xfl: xfl, rawBound: cg_deflate_bound(input.count), to: &output
    ) { out in
      cg_deflate_raw(
        builtin, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
        out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count)
    }
    precondition(written, "deflate output exceeded its own bound")
  }

  public func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) {
    input.withUnsafeBytes { compress($0, appendingTo: &output) }
  }
}
