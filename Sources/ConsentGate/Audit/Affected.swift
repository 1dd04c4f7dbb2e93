import CScanKernels
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Why `affected` could not answer (exit 2): no lineage, or a lineage file that does not
/// match the corpus's report.
public struct AffectedFailure: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// `consentgate affected` (SPEC §11): which kept files hold which of the queried users, from
/// the lineage files alone, each checked against `DIR/report.json` first.
public struct AffectedQuery {
  /// One kept file holding queried users.
  public struct FileHit: Sendable, Equatable {
    /// Relative to the corpus folder: `kept/NAME`.
    public var path: String
    /// Queried users it holds.
    public var users: Int
    /// Their records in it.
    public var records: Int
  }

  public var files: [FileHit] = []
  /// Distinct queried users held anywhere.
  public var usersHeld = 0
  public var records: Int { files.reduce(0) { $0 + $1.records } }

  /// Keeps the decoders' buffers, made and freed once per lineage file, mapped: with glibc's
  /// moving threshold they fragmented the heap (1,000 files: 460 MB peak RSS instead of
  /// 27 MB). Process-wide, so the command calls it, not ``run(corpus:users:)``.
  public static func keepBuffersMapped() {
    cg_fix_mmap_threshold(128 << 10)
  }

  /// Answers for `users` (canonical ids as bytes) over the corpus in `directory`: each
  /// lineage file, sorted by id, is merged with the sorted query, files on every core.
  public static func run(corpus directory: String, users: Set<[UInt8]>) throws(AffectedFailure)
    -> AffectedQuery
  {
    let (folder, lineageFiles) = try lineageOutputs(corpus: directory)
    let sorted = users.sorted { $0.lexicographicallyPrecedes($1) }
    let results = ScanResults(count: lineageFiles.count)
    // One thread per core, each taking the next file: a fixed number of decoders in memory
    // (a dispatch pool adds threads while reads block).
    let threads = min(lineageFiles.count, max(1, ProcessInfo.processInfo.activeProcessorCount))
    let done = DispatchSemaphore(value: 0)
    for _ in 0..<threads {
      let thread = Thread {
        let indexed = IndexedLineage()
        while let k = results.next() {
          let (path, name, sha) = lineageFiles[k]
          do throws(AffectedFailure) {
            results.store(
              k,
              .success(
                try scan(
                  folder, name, path: "\(directory)/\(path)", sha256: sha, for: sorted,
                  indexed: indexed)))
          } catch {
            results.store(k, .failure(error))
          }
        }
        done.signal()
      }
      thread.start()
    }
    for _ in 0..<threads { done.wait() }
    var query = AffectedQuery()
    var held = Set<Int>()
    for (k, (_, name, _)) in lineageFiles.enumerated() {
      let scanned = try results.take(k).get()
      held.formUnion(scanned.held)
      if !scanned.held.isEmpty {
        query.files.append(
          FileHit(path: "kept/\(name)", users: scanned.held.count, records: scanned.records))
      }
    }
    query.files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    query.usersHeld = held.count
    return query
  }

  /// One lineage file, checked against its report's SHA-256, against the sorted query: the
  /// positions of the queried users it holds and their records. A gzip file as ``LineageFile``
  /// writes it is read once and inflated only where its members' ranges hold queried ids;
  /// any other is hashed, then read whole.
  static func scan(
    _ folder: OutputFolder, _ name: String, path: String, sha256: String, for sorted: [[UInt8]],
    indexed: IndexedLineage
  ) throws(AffectedFailure) -> (held: [Int], records: Int) {
    let changed = AffectedFailure(
      message: "\(path): missing or changed since the report was written")
    guard let fd = folder.openRegularFile(name) else { throw changed }
    defer { close(fd) }
    if let result = try indexed.scan(fd, path: path, expectedSHA256: sha256, for: sorted) {
      return result
    }
    guard let actual = folder.sizeAndSHA256(name), actual.sha256 == sha256 else { throw changed }
    return try scan(path, for: sorted)
  }

  /// One lineage file read whole against the sorted query.
  static func scan(_ path: String, for sorted: [[UInt8]]) throws(AffectedFailure) -> (
    held: [Int], records: Int
  ) {
    var held: [Int] = []
    var records = 0
    var next = 0
    var previous: [UInt8]?
    try forEachLine(of: path) { line, number throws(AffectedFailure) in
      guard let (id, count) = parseLine(line) else {
        throw AffectedFailure(message: "\(path):\(number): not a lineage line")
      }
      // The merge needs the file in order; a file out of order would answer wrongly.
      if let previous, !previous.lexicographicallyPrecedes(id) {
        throw AffectedFailure(message: "\(path):\(number): lineage ids out of order")
      }
      previous = id
      while next < sorted.count && sorted[next].lexicographicallyPrecedes(id) { next += 1 }
      if next < sorted.count && sorted[next] == id {
        held.append(next)
        records += count
        next += 1
      }
    }
    return (held, records)
  }

  /// The corpus's lineage folder and the report's lineage outputs (path, NAME, SHA-256),
  /// each a regular file there; their hashes are checked as they are read.
  static func lineageOutputs(corpus directory: String) throws(AffectedFailure) -> (
    OutputFolder, [(String, String, String)]
  ) {
    let root: OutputFolder
    do {
      root = try OutputLayout.openExisting(directory)
    } catch {
      throw AffectedFailure(message: error.description)
    }
    guard let report = OutputLayout.readReport(root), case .array(let outputs)? = report["outputs"]
    else {
      throw AffectedFailure(message: "\(directory)/report.json: missing or not a report")
    }
    var found: [(String, String, String)] = []
    let folder = root.entryKind("lineage") == .directory ? try? root.subfolder("lineage") : nil
    for output in outputs {
      guard case .string(let path)? = output["path"], path.hasPrefix("lineage/"),
        case .string(let sha)? = output["sha256"]
      else { continue }
      let name = String(path.dropFirst("lineage/".count))
      guard folder != nil else {
        throw AffectedFailure(
          message: "\(directory)/\(path): missing or changed since the report was written")
      }
      found.append((path, name, sha))
    }
    guard let folder, !found.isEmpty else {
      throw AffectedFailure(message: "\(directory): no lineage (filter it with --lineage)")
    }
    return (folder, found)
  }

  /// Calls `body` with each line (without its LF) and its number.
  static func forEachLine(
    of path: String, _ body: (UnsafeRawBufferPointer, Int) throws(AffectedFailure) -> Void
  ) throws(AffectedFailure) {
    var pending: [UInt8] = []
    var number = 0
    let reader: DecodingReader
    do throws(InputError) {
      reader = try DecodingReader(path: path)
    } catch {
      throw AffectedFailure(message: "\(path): cannot be read (\(error))")
    }
    // The decoder's own buffer size: no larger block is mapped and freed per file.
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 8)
    defer { chunk.deallocate() }
    while true {
      let n: Int
      do throws(InputError) {
        n = try reader.read(into: chunk)
      } catch {
        throw AffectedFailure(message: "\(path): cannot be read (\(error))")
      }
      if n == 0 { break }
      let base = chunk.baseAddress!
      var start = 0
      while start < n, let lf = memchr(base + start, 0x0A, n - start) {
        let end = base.distance(to: lf)
        number += 1
        if pending.isEmpty {
          try body(UnsafeRawBufferPointer(start: base + start, count: end - start), number)
        } else {
          pending += UnsafeRawBufferPointer(start: base + start, count: end - start)
          let line = pending
          pending.removeAll(keepingCapacity: true)
          try withBytes(line) { raw throws(AffectedFailure) in try body(raw, number) }
        }
        start = end + 1
      }
      pending += UnsafeRawBufferPointer(start: base + start, count: n - start)
    }
    if !pending.isEmpty {
      number += 1
      let line = pending
      try withBytes(line) { raw throws(AffectedFailure) in try body(raw, number) }
    }
  }

  /// `bytes.withUnsafeBytes`, keeping the error's type.
  private static func withBytes(
    _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(AffectedFailure) -> Void
  ) throws(AffectedFailure) {
    let result: Result<Void, AffectedFailure> = bytes.withUnsafeBytes { raw in
      do throws(AffectedFailure) {
        try body(raw)
        return .success(())
      } catch {
        return .failure(error)
      }
    }
    try result.get()
  }

  /// `{"user_id":"…","records":N}` as ``LineageFile`` writes it, or nil.
  private static let head = Array(#"{"user_id":""#.utf8)
  private static let middle = Array(#"","records":"#.utf8)

  static func parseLine(_ line: UnsafeRawBufferPointer) -> ([UInt8], Int)? {
    let head = Self.head
    let middle = Self.middle
    guard line.starts(with: head), line.last == UInt8(ascii: "}") else { return nil }
    // Most ids have no escape: one copy of their bytes.
    if let quote = line[head.count...].firstIndex(of: UInt8(ascii: "\"")),
      !line[head.count..<quote].contains(UInt8(ascii: "\\"))
    {
      return parseCount(line, id: Array(line[head.count..<quote]), at: quote, middle: middle)
    }
    var id: [UInt8] = []
    var i = head.count
    while i < line.count && line[i] != UInt8(ascii: "\"") {
      if line[i] == UInt8(ascii: "\\") {
        guard i + 1 < line.count else { return nil }
        switch line[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
          id.append(line[i + 1])
          i += 2
        case UInt8(ascii: "u"):
          guard i + 6 <= line.count,
            let v = UInt8(String(decoding: line[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16)
          else { return nil }
          id.append(v)
          i += 6
        default: return nil
        }
      } else {
        id.append(line[i])
        i += 1
      }
    }
    return parseCount(line, id: id, at: i, middle: middle)
  }

  private static func parseCount(
    _ line: UnsafeRawBufferPointer, id: [UInt8], at i: Int, middle: [UInt8]
  ) -> ([UInt8], Int)? {
    guard i < line.count, line[i...].starts(with: middle), i + middle.count < line.count
    else { return nil }
    let digits = line[(i + middle.count)..<(line.count - 1)]
    guard !digits.isEmpty, digits.count <= 18 else { return nil }
    var records = 0
    for d in digits {
      guard d >= 0x30 && d <= 0x39 else { return nil }
      records = records * 10 + Int(d - 0x30)
    }
    return (id, records)
  }

  /// `--json`: {"files": [{"path", "users", "records"}], "users_held", "records"}.
  public var json: JSONValue {
    .object([
      (
        "files",
        .array(
          files.map {
            .object([
              ("path", .string($0.path)), ("users", .int(Int64($0.users))),
              ("records", .int(Int64($0.records))),
            ])
          })
      ),
      ("users_held", .int(Int64(usersHeld))),
      ("records", .int(Int64(records))),
    ])
  }

  /// A table for people.
  public var text: String {
    guard !files.isEmpty else { return "none of the queried users is held in a kept file" }
    let width = max(4, files.map(\.path.count).max() ?? 0)
    var lines = ["file".padding(toLength: width, withPad: " ", startingAt: 0) + "  users  records"]
    for f in files {
      lines.append(
        f.path.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
          + String(f.users).leftPad(5) + "  " + String(f.records).leftPad(7))
    }
    lines.append("\(usersHeld) queried users held, \(records) records")
    return lines.joined(separator: "\n")
  }

  /// `--users FILE`: one canonical id a line; one CR before LF stripped, lines of only spaces
  /// and tabs skipped. A line that is not UTF-8 is a usage error naming it.
  public static func readUsers(_ path: String) throws(UsageError) -> [[UInt8]] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw UsageError("--users \(path): cannot read it")
    }
    var users: [[UInt8]] = []
    for (k, var line) in Array(data).split(separator: 0x0A, omittingEmptySubsequences: false)
      .enumerated()
    {
      if line.last == 0x0D { line = line.dropLast() }
      if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
      guard String(validating: line, as: UTF8.self) != nil else {
        throw UsageError("--users \(path):\(k + 1): not UTF-8")
      }
      users.append(Array(line))
    }
    return users
  }
}

extension String {
  fileprivate func leftPad(_ width: Int) -> String {
    String(repeating: " ", count: max(0, width - count)) + self
  }
}

/// Per-file scan results, filled from several threads. `@unchecked Sendable`: every access
/// holds `lock`.
private final class ScanResults: @unchecked Sendable {
  private let lock = NSLock()
  private var results: [Result<(held: [Int], records: Int), AffectedFailure>?]

  private var taken = 0

  init(count: Int) { results = Array(repeating: nil, count: count) }

  /// The next file to scan, or nil when all are taken.
  func next() -> Int? {
    lock.lock()
    defer { lock.unlock() }
    guard taken < results.count else { return nil }
    taken += 1
    return taken - 1
  }

  func store(_ k: Int, _ result: Result<(held: [Int], records: Int), AffectedFailure>) {
    lock.lock()
    results[k] = result
    lock.unlock()
  }

  func take(_ k: Int) -> Result<(held: [Int], records: Int), AffectedFailure> {
    lock.lock()
    defer { lock.unlock() }
    return results[k]!
  }
}
