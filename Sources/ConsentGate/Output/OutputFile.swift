import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An output could not be written (exit 74).
public struct OutputError: Error, Sendable, Equatable, CustomStringConvertible {
  public var path: String
  public var detail: String
  public var description: String { "\(path): \(detail)" }
}

/// A file written under a temporary name in its final folder and renamed when complete, so
/// no file under its final name is ever partial. Counts and hashes what it writes.
///
/// Owns a file descriptor, so it is a class.
public final class OutputFile {
  public let finalPath: String
  public let temporaryPath: String
  private var fd: Int32
  private var hasher = SHA256()
  public private(set) var bytesWritten: UInt64 = 0
  /// Records written (lines, before compression).
  public var records = 0

  /// Creates the temporary file beside `finalPath`.
  public init(finalPath: String) throws(OutputError) {
    self.finalPath = finalPath
    let slash = finalPath.lastIndex(of: "/")
    let folder = slash.map { String(finalPath[..<$0]) } ?? "."
    let name = slash.map { String(finalPath[finalPath.index(after: $0)...]) } ?? finalPath
    temporaryPath = "\(folder)/.\(name).tmp-\(getpid())"
    fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw OutputError(path: temporaryPath, detail: InputSource.errnoText()) }
  }

  deinit {
    if fd >= 0 {
      close(fd)
      unlink(temporaryPath)
    }
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
    guard !bytes.isEmpty else { return }
    hasher.update(bufferPointer: bytes)
    var offset = 0
    while offset < bytes.count {
      let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        throw OutputError(path: finalPath, detail: InputSource.errnoText())
      }
      offset += n
    }
    bytesWritten += UInt64(bytes.count)
  }

  public func write(_ bytes: [UInt8]) throws(OutputError) {
    let result: Result<Void, OutputError> = bytes.withUnsafeBytes { raw in
      do throws(OutputError) {
        try write(raw)
        return .success(())
      } catch {
        return .failure(error)
      }
    }
    try result.get()
  }

  /// Flushes to disk and renames to the final name; returns the SHA-256 of the bytes.
  public func commit() throws(OutputError) -> String {
    if fsync(fd) != 0 && errno != EINVAL {
      throw OutputError(path: finalPath, detail: InputSource.errnoText())
    }
    if close(fd) != 0 {
      fd = -1
      unlink(temporaryPath)
      throw OutputError(path: finalPath, detail: InputSource.errnoText())
    }
    fd = -1
    if rename(temporaryPath, finalPath) != 0 {
      let detail = InputSource.errnoText()
      unlink(temporaryPath)
      throw OutputError(path: finalPath, detail: detail)
    }
    return hexString(hasher.finalize())
  }

  /// Removes the temporary file; nothing reaches the final name.
  public func discard() {
    if fd >= 0 {
      close(fd)
      fd = -1
    }
    unlink(temporaryPath)
  }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
public func writeAtomically(_ bytes: [UInt8], to path: String) throws(OutputError) {
  let file = try OutputFile(finalPath: path)
  try file.write(bytes)
  _ = try file.commit()
}
