import CCodecs

/// Compresses one block of output lines into a whole output frame (gzip member or zstd
/// frame): independent frames are what let blocks compress in parallel with bytes that do
/// not depend on the thread count.
public protocol BlockCompressor: AnyObject {
  /// Appends one complete frame holding `input` (possibly empty) to `output`.
  func compress(_ input: [UInt8], appendingTo output: inout [UInt8])
}

extension GzipMemberWriter: BlockCompressor {}

/// The compressor for `compression` at `level`, or nil for uncompressed output.
func makeBlockCompressor(_ compression: OutputCompression, level: Int) -> (any BlockCompressor)? {
  switch compression {
  case .none: nil
  case .gzip: GzipMemberWriter(level: level)
  case .zstd: ZstdFrameWriter(level: level)
  }
}

/// Compresses one block into one zstd frame with its content size and checksum (SPEC §12),
/// through libzstd (the `ZSTD` trait): the bytes depend only on the input, the level and the
/// libzstd version, which the report's `tool.codec` names.
///
/// Owns a libzstd context, so it is a class; use one per thread.
public final class ZstdFrameWriter: BlockCompressor {
  public let level: Int
  private let encoder: OpaquePointer
  private var scratch: UnsafeMutableRawBufferPointer

  /// A writer at zstd `level` (1–19); traps where the build has no zstd (callers check
  /// ``Codecs/hasZstd`` first: `--compression zstd` is then a usage error).
  public init(level: Int) {
    self.level = level
    guard let encoder = cg_zstd_encoder_new(Int32(level)) else {
      preconditionFailure("zstd could not start at level \(level)")
    }
    self.encoder = encoder
    scratch = .allocate(byteCount: cg_zstd_bound((1 << 20) + (1 << 18)), alignment: 64)
  }

  deinit {
    cg_zstd_encoder_free(encoder)
    scratch.deallocate()
  }

  public func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) {
    let bound = cg_zstd_bound(input.count)
    if bound > scratch.count {
      scratch.deallocate()
      scratch = .allocate(byteCount: bound, alignment: 64)
    }
    let written = input.withUnsafeBytes { raw in
      cg_zstd_compress_frame(
        encoder, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count,
        scratch.baseAddress!.assumingMemoryBound(to: UInt8.self), scratch.count)
    }
    // The bound holds for every input, so a failure here is a bug, not bad data.
    precondition(written > 0, "zstd compression failed")
    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<written]))
  }
}
