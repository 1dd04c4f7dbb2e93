// Over 300 lines on purpose: the build's sequence (passes 1 and 3, the planning and the
// change check) reads top to bottom here; pass 2 is in IndexBuckets.swift, the files'
// sequential readers and writers in SequentialFiles.swift.
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
  public func build(
    output: String, onMessage: (String) -> Void = { _ in }
  ) throws(IndexBuildFailure) -> IndexHeader {
    var clock = DispatchTime.now().uptimeNanoseconds
    func phase(_ text: String) {
      let now = DispatchTime.now().uptimeNanoseconds
      onMessage(text + String(format: " (%.1f s)", Double(now - clock) / 1e9))
      clock = now
    }
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
    phase("read \(sources.count) side files into \(buckets) buckets, \(runs.records) rows")
    afterReading?()
    for (k, path) in sources.enumerated() where IndexBuilder.fileIdentity(path) != before[k] {
      throw .changed(path)
    }

    // Pass 2: buckets resolved on every core, each into a file of its own.
    let resolved = IndexBuilder.resolveBuckets(
      runs, files: sources.count, folder: runFolder, limit: max(64 << 10, memoryBytes / 4),
      unknownAge: policy.unknownAge)
    var results: [IndexResolver] = []
    for r in resolved {
      switch r {
      case .success(let resolver): results.append(resolver)
      case .failure(let error): throw .output(error)
      }
    }
    let users = results.reduce(0) { $0 + $1.users }
    phase("resolved \(users) users")

    var header = IndexHeader(
      format: IndexFile.format, toolVersion: FilterReport.toolVersion,
      builtAt: Timestamp.now().rfc3339, policy: IndexPolicy(policy),
      consentFiles: loader.consentFiles, jurisdictionFiles: loader.jurisdictionFiles,
      users: users, capacity: IndexFile.capacity(users: results.reduce(0) { $0 + $1.entries }),
      sections: [])
    for k in header.consentFiles.indices {
      header.consentFiles[k].users = results.reduce(0) { $0 + $1.fileUsers[k] }
    }
    for k in header.jurisdictionFiles.indices {
      header.jurisdictionFiles[k].users = results.reduce(0) {
        $0 + $1.fileUsers[consentFiles.count + k]
      }
    }
    do throws(IndexBuildError) {
      try IndexBuilder.assemble(
        &header, resolved: (0..<results.count).map { "\(runFolder)/resolved-\($0)" },
        buckets: results, into: folder, name: name)
    } catch {
      throw .output(error)
    }
    phase("wrote the index")
    return header
  }

  /// Pass 3: the index file from the resolved entries, written under a temporary name and
  /// renamed to `name`.
  private static func assemble(
    _ header: inout IndexHeader, resolved: [String], buckets: [IndexResolver],
    into folder: OutputFolder, name: String
  ) throws(IndexBuildError) {
    let entryBytes = buckets.reduce(0) { $0 + $1.entryBytes }
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
    let entries = SequentialWriter(fd: fd, path: path, at: entriesAt, blocks: true)
    let slots = SequentialWriter(fd: fd, path: path, at: slotsAt, blocks: true)
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
    // Tag sets and exact times renumbered in bucket order: the same file for the same
    // side files, however the buckets were scheduled.
    var setNumbers: [String: Int] = [:]
    var tagSetLines = ""
    var exactTimeLines = ""
    var exactTimes = 0
    var entry: [UInt8] = []
    for (k, path) in resolved.enumerated() {
      var local = [0]
      for line in buckets[k].tagSetLines {
        if let n = setNumbers[line] {
          local.append(n)
        } else {
          let n = setNumbers.count + 1
          setNumbers[line] = n
          tagSetLines += line + "\n"
          local.append(n)
        }
      }
      let firstExact = exactTimes
      for line in buckets[k].exactTimeLines { exactTimeLines += line + "\n" }
      exactTimes += buckets[k].exactTimeLines.count
      let input = open(path, O_RDONLY | O_CLOEXEC)
      guard input >= 0 else {
        throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
      }
      defer { close(input) }
      let reader = SequentialReader(fd: input, path: path)
      while try reader.need(12) {
        let h = reader.load(UInt64.self, at: 0)
        let length = Int(reader.load(UInt32.self, at: 8))
        guard try reader.need(12 + length) else {
          throw IndexBuildError(message: "\(path) ends inside an entry")
        }
        let slot = max(IndexFile.home(h, capacity: capacity), nextSlot)
        try zeroSlots(slot - nextSlot)
        try slots.write(IndexFile.tag(h) | UInt64(entries.written + 1))
        nextSlot = slot + 1
        entry.removeAll(keepingCapacity: true)
        entry.append(contentsOf: reader.bytes(from: 12, count: length))
        entry.withUnsafeMutableBytes { e in
          var time = e.loadUnaligned(fromByteOffset: IndexFile.timeAt, as: UInt64.self)
          if time & PackedTime.exactBit != 0 {
            time = PackedTime.exactBit | UInt64(firstExact + PackedTime.exactPlace(time))
            e.storeBytes(of: time, toByteOffset: IndexFile.timeAt, as: UInt64.self)
          }
          let word = e.loadUnaligned(fromByteOffset: IndexFile.flagsAt, as: UInt32.self)
          let set = UInt32(local[Int(word >> 8)])
          e.storeBytes(of: word & 0xFF | set << 8, toByteOffset: IndexFile.flagsAt, as: UInt32.self)
        }
        try entries.write(entry)
        reader.consume(12 + length)
      }
    }
    // One empty slot past the last cluster, and at least the capacity.
    try zeroSlots(max(capacity, nextSlot + 1) - nextSlot)
    entries.finishBlocks()
    slots.finishBlocks()
    try entries.flush()
    try slots.flush()
    var sections = [
      IndexSection(name: "entries", offset: entriesAt, bytes: entries.written, crc32: entries.crc),
      IndexSection(name: "slots", offset: slotsAt, bytes: slots.written, crc32: slots.crc),
    ]
    var at = slotsAt + slots.written
    var blockList: [UInt8] = []
    for crc in entries.blockCRCs + slots.blockCRCs {
      withUnsafeBytes(of: crc.littleEndian) { blockList.append(contentsOf: $0) }
    }
    for (sectionName, bytes) in [
      ("tag_sets", Array(tagSetLines.utf8)), ("exact_times", Array(exactTimeLines.utf8)),
      ("block_crcs", blockList),
    ] {
      let w = SequentialWriter(fd: fd, path: path, at: at)
      try w.write(bytes)
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

  /// A side file's size once decoded, for planning the buckets: a compressed file's size
  /// times the ratio of its first 8 MiB (a CSV ledger shrinks 4-13× under gzip; a fixed
  /// guess made a 400 M-user build's buckets three times the size planned).
  static func estimatedBytes(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return 0 }
    let size = Int(info.st_size)
    guard let reader = try? DecodingReader(path: path), reader.format != .plain else {
      return size
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    var decoded = 0
    while decoded < 8 << 20, let n = try? reader.read(into: buffer), n > 0 { decoded += n }
    let consumed = max(1, Int(reader.source.bytesRead))
    return decoded < 8 << 20 ? decoded : Int(Double(size) * Double(decoded) / Double(consumed))
  }

  static func removeFolder(_ path: String) {
    if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
      for n in names { unlink("\(path)/\(n)") }
    }
    rmdir(path)
  }
}
