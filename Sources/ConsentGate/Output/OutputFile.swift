import CScanKernels
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
/// The temporary file is created exclusively under an unpredictable name, relative to the
/// folder's descriptor (``OutputFolder``): nothing planted in the folder is written through,
/// and a link at the final name is replaced by the rename, never followed (SPEC §8).
///
/// Owns a file descriptor, so it is a class.
public final class OutputFile {
  public let folder: OutputFolder
  /// The final name inside `folder`.
  public let name: String
  /// The temporary name inside `folder`.
  let temporaryName: String
  private var fd: Int32
  private var hasher = SHA256()
  public private(set) var bytesWritten: UInt64 = 0
  /// Bytes handed to the kernel for writeback so far (see `startWriteback`).
  private var writebackStarted: UInt64 = 0
  /// How much is written between two writeback requests.
  private static let writebackStep: UInt64 = 8 << 20
  private var iovecs: [iovec] = []
  /// Set when the file was opened for direct I/O: every write goes through it.
  private let direct: DirectWriter?
  /// Written after a run that ends without its LF. Never mutated after it is made.
  nonisolated(unsafe) private static let lineFeed: UnsafeRawBufferPointer = {
    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
    p[0] = 0x0A
    return UnsafeRawBufferPointer(p)
  }()
  /// Records written (lines, before compression).
  public var records = 0

  /// The final path, for messages.
  public var finalPath: String { "\(folder.path)/\(name)" }

  /// Creates the temporary file for `name` in `folder`. With `direct`, writes go around the
  /// page cache (``DirectWriter``) where the file system allows it, and through it elsewhere.
  public convenience init(in folder: OutputFolder, name: String, direct: Bool = false)
    throws(OutputError)
  {
    try self.init(
      in: folder, name: name, direct: direct, bufferSize: DirectWriter.defaultBufferSize)
  }

  /// Creates the temporary file for `finalPath` in the folder that holds it.
  public convenience init(finalPath: String, direct: Bool = false) throws(OutputError) {
    let slash = finalPath.lastIndex(of: "/")
    let folder = try OutputFolder(path: slash.map { String(finalPath[..<$0]) } ?? ".")
    let name = slash.map { String(finalPath[finalPath.index(after: $0)...]) } ?? finalPath
    try self.init(
      in: folder, name: name, direct: direct, bufferSize: DirectWriter.defaultBufferSize)
  }

  init(in folder: OutputFolder, name: String, direct: Bool, bufferSize: Int) throws(OutputError) {
    self.folder = folder
    self.name = name
    (fd, temporaryName) = try folder.createTemporary(for: name)
    if direct && cg_set_direct(fd) == 0 {
      self.direct = DirectWriter(fd: fd, path: "\(folder.path)/\(name)", bufferSize: bufferSize)
    } else {
      // Without direct I/O here (EINVAL), or not asked for: through the page cache.
      self.direct = nil
      iovecs.reserveCapacity(1024)
    }
  }

  /// Whether writes go around the page cache; false once the file system refused one.
  public var isDirect: Bool { direct?.isDirect ?? false }

  deinit {
    direct?.stop()
    if fd >= 0 {
      close(fd)
      folder.remove(temporaryName)
    }
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
    guard !bytes.isEmpty else { return }
    if let direct {
      try direct.append(bytes)
      bytesWritten += UInt64(bytes.count)
      return
    }
    iovecs.removeAll(keepingCapacity: true)
    try writeAll(queue(bytes))
  }

  /// Hashes `piece` and adds it to the vectors of the next `writeAll`; returns its length.
  @inline(__always)
  private func queue(_ piece: UnsafeRawBufferPointer) -> Int {
    hasher.update(bufferPointer: piece)
    iovecs.append(
      iovec(iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress), iov_len: piece.count))
    return piece.count
  }

  private func startWriteback() {
    // `commit` must fsync, and waiting then for a whole output to reach the disk took 0.2 s
    // of a 2 s run. Starting writeback every few MiB lets the disk work while we compute;
    // failures here are not errors, fsync still reports them.
    if bytesWritten - writebackStarted >= OutputFile.writebackStep {
      _ = cg_start_writeback(
        fd, Int64(writebackStarted), Int64(bytesWritten - writebackStarted))
      writebackStarted = bytesWritten
    }
  }

  /// Writes `runs` of `bytes` in order, each followed by an LF when it says so: uncompressed
  /// kept lines straight from their block, up to 1023 vectors per `writev` (IOV_MAX is 1024).
  public func write(runs: [ByteRun], of bytes: UnsafeRawBufferPointer) throws(OutputError) {
    guard let base = bytes.baseAddress else { return }
    if let direct {
      // Copied only: the writer hashes each buffer whole.
      var total = 0
      for run in runs {
        try direct.append(
          UnsafeRawBufferPointer(start: base + run.start, count: run.end - run.start))
        total += run.end - run.start
        if run.addLF {
          try direct.append(OutputFile.lineFeed)
          total += 1
        }
      }
      bytesWritten += UInt64(total)
      return
    }
    var i = 0
    while i < runs.count {
      iovecs.removeAll(keepingCapacity: true)
      var total = 0
      while i < runs.count && iovecs.count < 1023 {
        let run = runs[i]
        total += queue(UnsafeRawBufferPointer(start: base + run.start, count: run.end - run.start))
        if run.addLF { total += queue(OutputFile.lineFeed) }
        i += 1
      }
      try writeAll(total)
    }
  }

  /// Writes the `total` bytes that `iovecs` describe, resuming after short writes.
  private func writeAll(_ total: Int) throws(OutputError) {
    var written = 0
    var first = 0
    while written < total {
      let n = iovecs.withUnsafeMutableBufferPointer { v in
        writev(fd, v.baseAddress! + first, Int32(v.count - first))
      }
      if n < 0 {
        if errno == EINTR { continue }
        throw OutputError(path: finalPath, detail: InputSource.errnoText())
      }
      // A regular file never takes nothing; if one did, stop rather than spin.
      if n == 0 { throw OutputError(path: finalPath, detail: "the write made no progress") }
      written += n
      // Skip the vectors written in full and trim the one written in part.
      var left = n
      while first < iovecs.count && left >= iovecs[first].iov_len {
        left -= iovecs[first].iov_len
        first += 1
      }
      if left > 0 {
        iovecs[first].iov_base += left
        iovecs[first].iov_len -= left
      }
    }
    bytesWritten += UInt64(total)
    startWriteback()
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
    var digest = ""
    if let direct {
      try direct.finish()
      digest = hexString(direct.hasher.finalize())
    } else {
      digest = hexString(hasher.finalize())
    }
    if fsync(fd) != 0 && errno != EINVAL {
      throw OutputError(path: finalPath, detail: InputSource.errnoText())
    }
    if close(fd) != 0 {
      fd = -1
      folder.remove(temporaryName)
      throw OutputError(path: finalPath, detail: InputSource.errnoText())
    }
    fd = -1
    if !folder.rename(temporaryName, to: name) {
      let detail = InputSource.errnoText()
      folder.remove(temporaryName)
      throw OutputError(path: finalPath, detail: detail)
    }
    folder.sync()
    return digest
  }

  /// Hashes `input` into `other`: where this file is written directly, two lanes at a time
  /// with its own bytes not hashed yet (``DirectWriter/hash(pairing:with:)``).
  public func hash(pairing input: UnsafeRawBufferPointer, with other: inout SHA256Stream) {
    if let direct {
      direct.hash(pairing: input, with: &other)
    } else {
      other.update(input)
    }
  }

  /// Removes the temporary file; nothing reaches the final name.
  public func discard() {
    direct?.stop()
    if fd >= 0 {
      close(fd)
      fd = -1
    }
    folder.remove(temporaryName)
  }
}

/// Writes `bytes` to `name` in `folder` atomically (temporary file, fsync, rename).
public func writeAtomically(_ bytes: [UInt8], to name: String, in folder: OutputFolder)
  throws(OutputError)
{
  let file = try OutputFile(in: folder, name: name)
  try file.write(bytes)
  _ = try file.commit()
}
