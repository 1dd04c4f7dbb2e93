import CCodecs

/// The gzip codecs this build carries and which one does what.
///
/// The default build inflates with zlib and compresses with the package's own deflate
/// encoder (`Deflate.c`: zlib's level 6 runs at half its speed for a lower ratio on export
/// JSONL, and could not keep up with reading even on both cores). With the `ISAL` package
/// trait, ISA-L inflates every gzip input and compresses output levels 1–3; with
/// `LIBDEFLATE`, libdeflate compresses the levels ISA-L does not take. Each codec writes one
/// complete gzip member per block, so output bytes depend on the build and the level, never
/// on threads or timing; every build writes the same decompressed bytes.
public enum Codecs {
  #if ISAL
    public static let hasISAL = true
  #else
    public static let hasISAL = false
  #endif
  #if LIBDEFLATE
    public static let hasLibdeflate = true
  #else
    public static let hasLibdeflate = false
  #endif
  /// zstd inputs and `--compression zstd` (the `ZSTD` trait, libzstd).
  #if ZSTD
    public static let hasZstd = true
  #else
    public static let hasZstd = false
  #endif

  /// libzstd's version, where the build has it.
  public static var zstdVersion: String? {
    hasZstd ? String(cString: cg_zstd_version()) : nil
  }

  /// A block compressor.
  public enum Deflater: Sendable, Equatable {
    /// The package's own encoder (`cg_deflate_raw`).
    case builtin
    case isal, libdeflate
  }

  /// The compressor for gzip output at `level`.
  public static func deflater(level: Int) -> Deflater {
    if hasISAL && level <= 3 { return .isal }
    if hasLibdeflate { return .libdeflate }
    return .builtin
  }

  /// What inflates gzip input.
  public static var inflaterName: String { hasISAL ? "isa-l" : "zlib \(zlibVersionString)" }

  /// The report's `tool.codec`: what read the inputs and what wrote the outputs.
  public static func description(_ policy: Policy) -> String {
    var text = "inflate: \(inflaterName)"
    if policy.compression == .gzip {
      let writer =
        switch deflater(level: policy.level) {
        case .builtin: "consentgate"
        case .isal: "isa-l"
        case .libdeflate: "libdeflate"
        }
      text += "; deflate: \(writer) level \(policy.level)"
    }
    if let zstdVersion {
      text += "; zstd: libzstd \(zstdVersion)"
      if policy.compression == .zstd { text += " level \(policy.level)" }
    }
    return text
  }
}
