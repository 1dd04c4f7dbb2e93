import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why `index build` stopped; nothing was written under the output's name.
public enum IndexBuildFailure: Error, Sendable {
  /// A ledger or tag file is bad (exit 2), exactly as `filter` would say.
  case sideFiles(SideFileFailure)
  /// A source changed while it was read (exit 2).
  case changed(String)
  /// The index or its temporary runs could not be written (exit 74).
  case output(IndexBuildError)
}

/// Builds a consent index file (SPEC §9) in bounded memory, in three passes:
/// 1. the side files are read by the same ``SideFileLoader`` as `filter` (same rows, same
///    errors), each row judged at the cutoff and appended to an on-disk run chosen by its id's
///    hash (``IndexRuns``);
/// 2. the runs, a few buckets at a time within `memoryBytes`, are sorted by hash and each
///    user resolved as the in-memory ``ConsentIndex`` would (the latest event wins, the more
///    restrictive at equal times), into one file of entries in hash order;
/// 3. those entries are written into the index with the slot table beside them, both front to
///    back, because a user's home slot grows with their hash (``IndexFile/home(_:capacity:)``).
public struct IndexBuilder {
  public var policy: Policy
  public var consentFiles: [String]
  public var jurisdictionFiles: [String]
  /// The memory the build may use for its in-memory passes (a soft limit: one bucket is
  /// always resolved whole).
  public var memoryBytes: Int
  /// Buckets of pass 1 (a power of two), instead of the number planned from the sizes of the
  /// side files and `memoryBytes`: tests use it to cross bucket edges with small ledgers.
  var buckets: Int?
  /// Called after the side files are read, before they are checked for changes (tests).
  var afterReading: (() -> Void)?

  /// A quarter of the machine's memory.
  public static var defaultMemory: Int {
    let pages = sysconf(Int32(_SC_PHYS_PAGES))
    let size = sysconf(Int32(_SC_PAGESIZE))
    return pages > 0 && size > 0 ? pages * size / 4 : 1 << 30
  }

  public init(policy: Policy, consentFiles: [String], jurisdictionFiles: [String]) {
    self.policy = policy
    self.consentFiles = consentFiles
    self.jurisdictionFiles = jurisdictionFiles
    memoryBytes = IndexBuilder.defaultMemory
  }

  /// Builds the index at `output`, atomically: a temporary file beside it, renamed when
  /// complete. The runs live in a fresh folder beside it and are removed at the end.
  public func build(output: String) throws(IndexBuildFailure) -> IndexHeader {
    let url = URL(fileURLWithPath: output)
    let parent = output.contains("/") ? url.deletingLastPathComponent().path : "."
    let name = url.lastPathComponent
    let folder: OutputFolder
    do {
      folder = try OutputFolder(path: parent)
    } catch {
      throw .output(IndexBuildError(message: "cannot write \(error)"))
    }
    var template = Array("\(parent)/.\(name).build-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw .output(
        IndexBuildError(message: "cannot create a folder in \(parent): \(InputSource.errnoText())"))
    }
    let runFolder = String(cString: made)
    defer { IndexBuilder.removeFolder(runFolder) }

    let sources = consentFiles + jurisdictionFiles
    let before = sources.map(IndexBuilder.fileIdentity)
    let estimate = sources.reduce(0) { $0 + IndexBuilder.estimatedBytes($1) }
    let target = max(1 << 20, memoryBytes / 8)
    var buckets = 1
    while buckets < 4096 && buckets * target < estimate { buckets *= 2 }
    buckets = self.buckets ?? buckets
    let runs: IndexRuns
    do {
      runs = try IndexRuns(
        folder: runFolder, buckets: buckets,
        bufferBytes: min(4 << 20, max(64 << 10, memoryBytes / 16 / buckets)))
    } catch {
      throw .output(error)
    }
    var loader = SideFileLoader(policy: policy)
    loader.runs = runs
    do {
      try loader.load(consent: consentFiles, jurisdictions: jurisdictionFiles)
    } catch {
      throw .sideFiles(error)
    }
    do {
      try runs.finish()
    } catch {
      throw .output(error)
    }
    afterReading?()
    for (k, path) in sources.enumerated() where IndexBuilder.fileIdentity(path) != before[k] {
      throw .changed(path)
    }

    var resolver = IndexResolver(files: sources.count)
    let resolvedPath = "\(runFolder)/resolved"
    do throws(IndexBuildError) {
      let fd = open(resolvedPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else {
        throw IndexBuildError(message: "cannot create \(resolvedPath): \(InputSource.errnoText())")
      }
      defer { close(fd) }
      let out = SequentialWriter(fd: fd, path: resolvedPath)
      var k = 0
      while k < buckets {
        var end = k + 1
        var bytes = runs.bucketBytes[k]
        while end < buckets && bytes + runs.bucketBytes[end] <= memoryBytes / 2 {
          bytes += runs.bucketBytes[end]
          end += 1
        }
        let data = try IndexBuilder.readWhole((k..<end).map(runs.bucketPath), bytes: bytes)
        try resolver.resolve(data, into: out)
        for b in k..<end { unlink(runs.bucketPath(b)) }
        k = end
      }
      try out.flush()
    } catch {
      throw .output(error)
    }

    var header = IndexHeader(
      format: IndexFile.format, toolVersion: FilterReport.toolVersion,
      builtAt: Timestamp.now().rfc3339, policy: IndexPolicy(policy),
      consentFiles: loader.consentFiles, jurisdictionFiles: loader.jurisdictionFiles,
      users: resolver.users, capacity: IndexFile.capacity(users: resolver.entries), sections: [])
    for k in header.consentFiles.indices { header.consentFiles[k].users = resolver.fileUsers[k] }
    for k in header.jurisdictionFiles.indices {
      header.jurisdictionFiles[k].users = resolver.fileUsers[consentFiles.count + k]
    }
    do throws(IndexBuildError) {
      try IndexBuilder.assemble(
        &header, resolved: resolvedPath, entryBytes: resolver.entryBytes, resolver: resolver,
        into: folder, name: name)
    } catch {
      throw .output(error)
    }
    return header
  }

  /// Pass 3: the index file from the resolved entries, written under a temporary name and
  /// renamed to `name`.
  private static func assemble(
    _ header: inout IndexHeader, resolved: String, entryBytes: Int, resolver: IndexResolver,
    into folder: OutputFolder, name: String
  ) throws(IndexBuildError) {
    let (fd, temporary): (Int32, String)
    do {
      (fd, temporary) = try folder.createTemporary(for: name)
    } catch {
      throw IndexBuildError(message: "cannot write \(error)")
    }
    var committed = false
    defer {
      close(fd)
      if !committed { _ = folder.remove(temporary) }
    }
    let path = "\(folder.path)/\(name)"
    let entriesAt = IndexFile.preludeBytes
    let slotsAt = (entriesAt + entryBytes + 7) & ~7
    let entries = SequentialWriter(fd: fd, path: path, at: entriesAt)
    let slots = SequentialWriter(fd: fd, path: path, at: slotsAt)
    let zeros = [UInt8](repeating: 0, count: 1 << 16)
    func zeroSlots(_ n: Int) throws(IndexBuildError) {
      var left = n * 8
      while left > 0 {
        let k = min(left, zeros.count)
        try slots.write(k == zeros.count ? zeros : Array(zeros[0..<k]))
        left -= k
      }
    }
    guard entryBytes < Int(IndexFile.offsetMask) else {
      throw IndexBuildError(message: "the entries exceed 1 TiB")
    }
    let capacity = header.capacity
    var nextSlot = 0
    let input = open(resolved, O_RDONLY | O_CLOEXEC)
    guard input >= 0 else {
      throw IndexBuildError(message: "cannot read \(resolved): \(InputSource.errnoText())")
    }
    defer { close(input) }
    let reader = SequentialReader(fd: input, path: resolved)
    while try reader.need(12) {
      let h = reader.load(UInt64.self, at: 0)
      let length = Int(reader.load(UInt32.self, at: 8))
      guard try reader.need(12 + length) else {
        throw IndexBuildError(message: "\(resolved) ends inside an entry")
      }
      let slot = max(IndexFile.home(h, capacity: capacity), nextSlot)
      try zeroSlots(slot - nextSlot)
      try slots.write(IndexFile.tag(h) | UInt64(entries.written + 1))
      nextSlot = slot + 1
      try entries.write(reader.bytes(from: 12, count: length))
      reader.consume(12 + length)
    }
    // One empty slot past the last cluster, and at least the capacity.
    try zeroSlots(max(capacity, nextSlot + 1) - nextSlot)
    try entries.flush()
    try slots.flush()
    var sections = [
      IndexSection(name: "entries", offset: entriesAt, bytes: entries.written, crc32: entries.crc),
      IndexSection(name: "slots", offset: slotsAt, bytes: slots.written, crc32: slots.crc),
    ]
    var at = slotsAt + slots.written
    for (sectionName, text) in [
      ("tag_sets", resolver.tagSetLines), ("exact_times", resolver.exactTimeLines),
    ] {
      let w = SequentialWriter(fd: fd, path: path, at: at)
      try w.write(Array(text.utf8))
      try w.flush()
      sections.append(IndexSection(name: sectionName, offset: at, bytes: w.written, crc32: w.crc))
      at += w.written
    }
    header.sections = sections
    let headerBytes = header.json.bytes(sorted: false, indent: nil)
    let h = SequentialWriter(fd: fd, path: path, at: at)
    try h.write(headerBytes)
    try h.flush()
    var prelude: [UInt8] = IndexFile.magic
    func append<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { prelude.append(contentsOf: $0) }
    }
    append(UInt32(IndexFile.format))
    append(UInt32(0))
    append(UInt64(at))
    append(UInt64(headerBytes.count))
    append(h.crc)
    append(prelude.withUnsafeBytes { IndexFile.crc32($0) })
    prelude += [UInt8](repeating: 0, count: IndexFile.preludeBytes - prelude.count)
    let p = SequentialWriter(fd: fd, path: path, at: 0)
    try p.write(prelude)
    try p.flush()
    guard fsync(fd) == 0 else {
      throw IndexBuildError(message: "cannot write \(path): \(InputSource.errnoText())")
    }
    guard folder.rename(temporary, to: name) else {
      throw IndexBuildError(message: "cannot rename into \(path): \(InputSource.errnoText())")
    }
    committed = true
    folder.sync()
  }

  /// What identifies a file's content without reading it: a change while it is read changes
  /// its size, modification or status-change time.
  static func fileIdentity(_ path: String) -> [Int] {
    var info = stat()
    guard stat(path, &info) == 0 else { return [] }
    return [
      Int(info.st_dev), Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec,
      info.st_mtim.tv_nsec, info.st_ctim.tv_sec, info.st_ctim.tv_nsec,
    ]
  }

  /// A side file's size, counting a gzip file as four times its size (a typical ratio for
  /// CSV): what the number of buckets is planned from.
  static func estimatedBytes(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return 0 }
    let size = Int(info.st_size)
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return size }
    defer { close(fd) }
    var magic: (UInt8, UInt8) = (0, 0)
    let n = read(fd, &magic, 2)
    return n == 2 && magic == (0x1F, 0x8B) ? size * 4 : size
  }

  static func readWhole(_ paths: [String], bytes: Int) throws(IndexBuildError) -> [UInt8] {
    var data = [UInt8](repeating: 0, count: bytes)
    var at = 0
    for path in paths {
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else {
        throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
      }
      defer { close(fd) }
      while true {
        let n = data.withUnsafeMutableBytes { read(fd, $0.baseAddress! + at, bytes - at) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else {
          throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
        }
        if n == 0 { break }
        at += n
      }
    }
    guard at == bytes else {
      throw IndexBuildError(message: "the runs in \(paths.first ?? "") changed size")
    }
    return data
  }

  static func removeFolder(_ path: String) {
    if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
      for n in names { unlink("\(path)/\(n)") }
    }
    rmdir(path)
  }
}

/// A file read front to back through a buffer that can hold any one record whole.
final class SequentialReader {
  private let fd: Int32
  private let path: String
  private var buffer = [UInt8](repeating: 0, count: 1 << 20)
  private var start = 0
  private var end = 0

  init(fd: Int32, path: String) {
    self.fd = fd
    self.path = path
  }

  /// Makes `n` bytes available from the current position; false at the end of the file.
  func need(_ n: Int) throws(IndexBuildError) -> Bool {
    if end - start >= n { return true }
    if start > 0 {
      buffer.withUnsafeMutableBytes { b in
        b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: end - start)
      }
      end -= start
      start = 0
    }
    if buffer.count < n { buffer += [UInt8](repeating: 0, count: n - buffer.count) }
    while end < n {
      let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
      if got < 0 && errno == EINTR { continue }
      guard got >= 0 else {
        throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
      }
      if got == 0 { return false }
      end += got
    }
    return true
  }

  func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    buffer.withUnsafeBytes {
      T(littleEndian: $0.loadUnaligned(fromByteOffset: start + offset, as: T.self))
    }
  }

  func bytes(from offset: Int, count: Int) -> [UInt8] {
    Array(buffer[(start + offset)..<(start + offset + count)])
  }

  func consume(_ n: Int) { start += n }
}
