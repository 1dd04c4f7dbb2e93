/// `--inputs-from FILE` (SPEC §10): input paths, one a line.
public enum InputList {
  /// The paths listed in `path`: one CR before an LF stripped, lines of only spaces and tabs
  /// skipped, every other line taken as it is. An unreadable file is a usage error.
  public static func read(_ path: String) throws(UsageError) -> [String] {
    var bytes: [UInt8] = []
    do throws(InputError) {
      let source = try InputSource(path: path)
      let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
      defer { chunk.deallocate() }
      while case let n = try source.read(into: chunk), n > 0 { bytes += chunk[..<n] }
    } catch {
      throw UsageError("--inputs-from \(path): cannot read it")
    }
    var paths: [String] = []
    for var line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
      if line.last == 0x0D { line = line.dropLast() }
      if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
      paths.append(String(decoding: line, as: UTF8.self))
    }
    return paths
  }
}
