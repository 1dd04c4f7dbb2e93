import CCodecs
import CZlib

/// Compresses one block into one complete gzip member.
///
/// zlib writes the header with mtime 0, no file name and OS 3 (Unix) for a gzip stream set
/// up with `deflateInit2`, so the bytes depend only on the input and the level: output is
/// identical for any thread count and any run of the same build. Members are independent,
/// which is what lets blocks compress in parallel; `gzip -d` reads the concatenation as one
/// stream.
///
/// The codec is ``Codecs/deflater(level:)``: zlib in the default build; ISA-L or libdeflate
/// when a trait brings them in. Those write the same header bytes (ISA-L) or their own fixed
/// header (libdeflate), so the bytes still depend only on the build, the level and the input.
///
/// Owns a zlib stream at a fixed heap address, so it is a class; use one per thread.
public final class GzipMemberWriter {
  public let level: Int32
  public let deflater: Codecs.Deflater
  private let stream: UnsafeMutablePointer<z_stream>
  private var isalLevelBuffer: UnsafeMutableRawBufferPointer?
  private var libdeflate: OpaquePointer?
  /// Where members are compressed before they are appended to the caller's output. Sized up
  /// front for a pipeline block (1 MiB and a line), so compressing one allocates nothing.
  private var scratch = UnsafeMutableRawBufferPointer.allocate(
    byteCount: (1 << 20) + (1 << 18), alignment: 64)

  public init(level: Int) {
    self.level = Int32(level)
    deflater = Codecs.deflater(level: level)
    switch deflater {
    case .zlib: break
    case .isal:
      isalLevelBuffer = .allocate(
        byteCount: cg_isal_level_buffer_size(Int32(level)), alignment: 64)
    case .libdeflate:
      libdeflate = cg_libdeflate_new(Int32(level))
      precondition(libdeflate != nil, "libdeflate could not start at level \(level)")
    }
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let rc = deflateInit2_(
      stream, self.level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    precondition(rc == Z_OK, "zlib deflateInit2 failed: \(rc)")
  }

  deinit {
    deflateEnd(stream)
    stream.deallocate()
    isalLevelBuffer?.deallocate()
    scratch.deallocate()
    if let libdeflate { cg_libdeflate_free(libdeflate) }
  }

  /// Appends one gzip member holding `input` to `output`.
  public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) {
    switch deflater {
    case .zlib: compressWithZlib(input, appendingTo: &output)
    case .isal:
      // Stored blocks are the worst case: 5 bytes per 64 KiB block over the input.
      let written = appendMember(bound: input.count + input.count / 1024 + 1024, to: &output) {
        out in
        cg_isal_gzip_member(
          level, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
          out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
          isalLevelBuffer!.baseAddress!.assumingMemoryBound(to: UInt8.self), isalLevelBuffer!.count)
      }
      if !written { compressWithZlib(input, appendingTo: &output) }
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

  private func compressWithZlib(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8])
  {
    deflateReset(stream)
    let bound = Int(deflateBound(stream, UInt(input.count))) + 64
    let written = appendMember(bound: bound, to: &output) { out in
      stream.pointee.next_in = UnsafeMutablePointer(
        mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
      stream.pointee.avail_in = UInt32(input.count)
      stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
      stream.pointee.avail_out = UInt32(out.count)
      let rc = deflate(stream, Z_FINISH)
      precondition(rc == Z_STREAM_END, "zlib deflate did not finish: \(rc)")
      return out.count - Int(stream.pointee.avail_out)
    }
    precondition(written, "zlib output exceeded its own bound")
  }

  public func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) {
    input.withUnsafeBytes { compress($0, appendingTo: &output) }
  }
}
