import CZlib

/// Compresses one block into one complete gzip member.
///
/// zlib writes the header with mtime 0, no file name and OS 3 (Unix) for a gzip stream set
/// up with `deflateInit2`, so the bytes depend only on the input and the level: output is
/// identical for any thread count and any run of the same build. Members are independent,
/// which is what lets blocks compress in parallel; `gzip -d` reads the concatenation as one
/// stream.
///
/// Owns a zlib stream at a fixed heap address, so it is a class; use one per thread.
public final class GzipMemberWriter {
  public let level: Int32
  private let stream: UnsafeMutablePointer<z_stream>

  public init(level: Int) {
    self.level = Int32(level)
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
  }

  /// Appends one gzip member holding `input` to `output`.
  public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) {
    deflateReset(stream)
    let bound = Int(deflateBound(stream, UInt(input.count))) + 64
    let start = output.count
    output.append(contentsOf: repeatElement(0, count: bound))
    output.withUnsafeMutableBytes { out in
      stream.pointee.next_in = UnsafeMutablePointer(
        mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
      stream.pointee.avail_in = UInt32(input.count)
      stream.pointee.next_out = (out.baseAddress! + start).assumingMemoryBound(to: UInt8.self)
      stream.pointee.avail_out = UInt32(bound)
      let rc = deflate(stream, Z_FINISH)
      precondition(rc == Z_STREAM_END, "zlib deflate did not finish: \(rc)")
    }
    output.removeLast(Int(stream.pointee.avail_out))
  }

  public func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) {
    input.withUnsafeBytes { compress($0, appendingTo: &output) }
  }
}
