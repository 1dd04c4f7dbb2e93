import Foundation

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

  /// Answers for `users` (canonical ids as bytes) over the corpus in `directory`.
  public static func run(corpus directory: String, users: Set<[UInt8]>) throws(AffectedFailure)
    -> AffectedQuery
  {
    let lineageFiles = try lineageOutputs(corpus: directory)
    var query = AffectedQuery()
    var held: Set<[UInt8]> = []
    for (path, name) in lineageFiles {
      var hit = FileHit(path: "kept/\(name)", users: 0, records: 0)
      try forEachLine(of: "\(directory)/\(path)") { id, records in
        if users.contains(id) {
          hit.users += 1
          hit.records += records
          held.insert(id)
        }
      }
      if hit.users > 0 { query.files.append(hit) }
    }
    query.files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    query.usersHeld = held.count
    return query
  }

  /// The corpus report's lineage outputs (path, NAME), each checked on disk: the file's
  /// SHA-256 must be the one the report states.
  static func lineageOutputs(corpus directory: String) throws(AffectedFailure) -> [(
    String, String
  )] {
    let root: OutputFolder
    do {
      root = try OutputFolder(path: directory)
      try root.requireRealFolders(OutputLayout.folders)
    } catch {
      throw AffectedFailure(message: error.description)
    }
    guard let bytes = root.contents(of: "report.json", limit: 1 << 30),
      let report = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)),
      case .array(let outputs)? = report["outputs"]
    else {
      throw AffectedFailure(message: "\(directory)/report.json: missing or not a report")
    }
    var found: [(String, String)] = []
    for output in outputs {
      guard case .string(let path)? = output["path"], path.hasPrefix("lineage/"),
        case .string(let sha)? = output["sha256"]
      else { continue }
      let name = String(path.dropFirst("lineage/".count))
      guard root.entryKind("lineage") == .directory,
        let folder = try? root.subfolder("lineage"),
        let actual = folder.sizeAndSHA256(name), actual.sha256 == sha
      else {
        throw AffectedFailure(
          message: "\(directory)/\(path): missing or changed since the report was written")
      }
      found.append((path, name))
    }
    guard !found.isEmpty else {
      throw AffectedFailure(message: "\(directory): no lineage (filter it with --lineage)")
    }
    return found
  }

  /// Calls `body` with each line's id bytes and record count.
  static func forEachLine(of path: String, _ body: ([UInt8], Int) -> Void) throws(AffectedFailure) {
    var line: [UInt8] = []
    var number = 0
    func finish() throws(AffectedFailure) {
      number += 1
      guard let (id, records) = parseLine(line) else {
        throw AffectedFailure(message: "\(path):\(number): not a lineage line")
      }
      body(id, records)
      line.removeAll(keepingCapacity: true)
    }
    do {
      let reader = try DecodingReader(path: path)
      let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
      defer { chunk.deallocate() }
      while case let n = try reader.read(into: chunk), n > 0 {
        for b in chunk[..<n] {
          if b == 0x0A { try finish() } else { line.append(b) }
        }
      }
    } catch let failure as AffectedFailure {
      throw failure
    } catch {
      throw AffectedFailure(message: "\(path): cannot be read (\(error))")
    }
    if !line.isEmpty { try finish() }
  }

  /// `{"user_id":"…","records":N}` as ``LineageFile`` writes it, or nil.
  static func parseLine(_ line: [UInt8]) -> ([UInt8], Int)? {
    let head = Array(#"{"user_id":""#.utf8)
    let middle = Array(#"","records":"#.utf8)
    guard line.starts(with: head), line.last == UInt8(ascii: "}") else { return nil }
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
    guard line[i...].starts(with: middle) else { return nil }
    let digits = line[(i + middle.count)..<(line.count - 1)]
    guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
      let records = Int(String(decoding: digits, as: UTF8.self))
    else { return nil }
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
