import Foundation

/// Why `merge-reports` wrote nothing (exit 2): the files involved and the key that differs.
public struct MergeRefusal: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// `consentgate merge-reports DIR [--shards N]` (SPEC §10): one `DIR/report.json` from the
/// shard reports in `DIR/reports/`, equal to an unsharded run's report but for the keys §10
/// lets differ, or a refusal when the shards do not belong together.
public struct ReportMerger {
  public let directory: String
  public let shards: Int?

  public init(directory: String, shards: Int? = nil) {
    self.directory = directory
    self.shards = shards
  }

  /// Writes `DIR/report.json` and returns it with the exit status an unsharded run would
  /// have had (0, 2 or 3).
  public func run() throws -> (report: JSONValue, exitCode: Int32) {
    let root: OutputFolder
    do {
      root = try OutputLayout.openExisting(directory)
    } catch {
      throw MergeRefusal(message: error.description)
    }
    // A refused merge must not leave an earlier merge's report looking current.
    root.remove("report.json")
    guard root.entryKind("reports") == .directory else {
      throw MergeRefusal(message: "\(directory)/reports: no shard reports")
    }
    let folder = try root.subfolder("reports")
    let reports = try load(folder)
    let merged = try merge(reports, folder: folder)
    try writeAtomically(
      merged.report.bytes(sorted: false, indent: 0) + [0x0A], to: "report.json", in: root)
    return merged
  }

  /// The shard reports of the chosen count, by index, parsed.
  private func load(_ folder: OutputFolder) throws(MergeRefusal) -> [(
    name: String, value: JSONValue
  )] {
    var byCount: [Int: [Int: String]] = [:]
    for entry in folder.entries() {
      guard let (index, count) = Self.parseName(entry) else { continue }
      byCount[count, default: [:]][index] = entry
    }
    let count: Int
    if let shards {
      count = shards
    } else {
      guard !byCount.isEmpty else {
        throw MergeRefusal(message: "\(folder.path): no shard reports")
      }
      guard byCount.count == 1, let only = byCount.keys.first else {
        let counts = byCount.keys.sorted().map(String.init).joined(separator: ", ")
        throw MergeRefusal(
          message:
            "\(folder.path): shard reports of several counts (\(counts)); choose one with --shards"
        )
      }
      count = only
    }
    let files = byCount[count] ?? [:]
    var reports: [(String, JSONValue)] = []
    for index in 0..<count {
      let name = (try? Shard(index: index, count: count))?.reportName ?? ""
      guard files[index] != nil, let bytes = folder.contents(of: name, limit: 1 << 30),
        let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
      else {
        throw MergeRefusal(
          message: "\(folder.path)/\(name): shard \(index) of \(count) is missing or unreadable")
      }
      guard value["shard"]?["index"] == .int(Int64(index)),
        value["shard"]?["count"] == .int(Int64(count))
      else {
        throw MergeRefusal(
          message:
            "\(folder.path)/\(name): its \"shard\" key does not name shard \(index) of \(count)")
      }
      reports.append((name, value))
    }
    return reports
  }

  /// `shard-IIIII-of-NNNNN.json` as (I, N).
  static func parseName(_ name: String) -> (Int, Int)? {
    let parts = name.split(separator: "-")
    guard parts.count == 4, parts[0] == "shard", parts[2] == "of", parts[1].count == 5,
      parts[3].count == 10, parts[3].hasSuffix(".json"),
      let index = Shard.decimal(parts[1]), let count = Shard.decimal(parts[3].dropLast(5)),
      index < count
    else { return nil }
    return (index, count)
  }

  private func merge(_ reports: [(name: String, value: JSONValue)], folder: OutputFolder)
    throws(MergeRefusal)
    -> (report: JSONValue, exitCode: Int32)
  {
    let first = reports[0]
    // What must be the same in every shard for the merge to be one run's report.
    func sideFiles(_ v: JSONValue, _ key: String) -> JSONValue {
      guard case .array(let files)? = v[key] else { return .null }
      return .array(files.map { $0["sha256"] ?? .null })
    }
    func index(_ v: JSONValue) -> JSONValue {
      guard let i = v["index"], i != .null else { return .null }
      return .array([i["sha256"] ?? .null, i["format"] ?? .null])
    }
    let checks: [(String, (JSONValue) -> JSONValue)] = [
      ("tool", { $0["tool"] ?? .null }),
      ("policy_sha256", { $0["policy_sha256"] ?? .null }),
      ("cutoff", { $0["cutoff"] ?? .null }),
      ("consent", { sideFiles($0, "consent") }),
      ("jurisdictions", { sideFiles($0, "jurisdictions") }),
      ("index", index),
    ]
    for (name, value) in reports.dropFirst() {
      for (key, extract) in checks where extract(value).canonical != extract(first.value).canonical
      {
        throw MergeRefusal(
          message: "\(folder.path)/\(first.name) and \(folder.path)/\(name) differ in \"\(key)\"")
      }
    }

    let compression: OutputCompression =
      {
        if case .string(let c)? = first.value["policy"]?["compression"] {
          OutputCompression(rawValue: c) ?? .gzip
        } else {
          .gzip
        }
      }()
    var inputs: [(name: String, value: JSONValue)] = []
    var owner: [String: String] = [:]
    var outputs: [JSONValue] = []
    var warnings: [String] = []
    var totals = [String: Int64]()
    var reasons = [String: Int64]()
    var jurisdiction = [String: Int64]()
    var started: (Timestamp, JSONValue)?
    var finished: (Timestamp, JSONValue)?
    var threads: Int64 = 0
    var failed = false
    func add(_ object: JSONValue?, into sums: inout [String: Int64]) {
      guard case .object(let members)? = object else { return }
      for (k, v) in members { if case .int(let n) = v { sums[k, default: 0] += n } }
    }
    for (name, value) in reports {
      if case .array(let list)? = value["inputs"] {
        for input in list {
          guard case .string(let path)? = input["path"] else { continue }
          let output = Filter.outputName(forInput: path, compression: compression)
          if let other = owner[output] {
            throw MergeRefusal(
              message:
                "\(folder.path)/\(other) and \(folder.path)/\(name) both hold the input \(output)")
          }
          owner[output] = name
          inputs.append((output, input))
          if input["status"] != .string("ok") { failed = true }
        }
      }
      if case .array(let list)? = value["outputs"] { outputs += list }
      if case .array(let list)? = value["warnings"] {
        for case .string(let w) in list where !warnings.contains(w) { warnings.append(w) }
      }
      add(value["totals"], into: &totals)
      add(value["reasons"], into: &reasons)
      add(value["jurisdiction"], into: &jurisdiction)
      if case .string(let text)? = value["started_at"], let t = Timestamp.parseRFC3339(text),
        started.map({ t < $0.0 }) ?? true
      {
        started = (t, .string(text))
      }
      if case .string(let text)? = value["finished_at"], let t = Timestamp.parseRFC3339(text),
        finished.map({ $0.0 < t }) ?? true
      {
        finished = (t, .string(text))
      }
      if case .int(let n)? = value["threads"] { threads = max(threads, n) }
    }
    func bytesOrder(_ a: String, _ b: String) -> Bool {
      Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
    }
    inputs.sort { bytesOrder($0.name, $1.name) }
    outputs.sort {
      guard case .string(let a)? = $0["path"], case .string(let b)? = $1["path"] else {
        return false
      }
      return bytesOrder(a, b)
    }
    func ordered(_ sums: [String: Int64], _ keys: [String]) -> JSONValue {
      let extra = sums.keys.filter { !keys.contains($0) }.sorted()
      return .object((keys + extra).map { ($0, .int(sums[$0] ?? 0)) })
    }
    var members: [(String, JSONValue)] = [
      ("tool", first.value["tool"] ?? .null),
      ("policy", first.value["policy"] ?? .null),
      ("policy_sha256", first.value["policy_sha256"] ?? .null),
      ("cutoff", first.value["cutoff"] ?? .null),
      ("inputs", .array(inputs.map(\.value))),
      ("consent", first.value["consent"] ?? .array([])),
      ("jurisdictions", first.value["jurisdictions"] ?? .array([])),
    ]
    if let index = first.value["index"] { members.append(("index", index)) }
    members += [
      ("totals", ordered(totals, ["records", "kept", "dropped", "quarantined"])),
      ("reasons", ordered(reasons, Reason.allCases.map(\.code))),
      ("jurisdiction", ordered(jurisdiction, JurisdictionCount.allCases.map(\.key))),
      ("outputs", .array(outputs)),
      ("warnings", .array(warnings.map(JSONValue.string))),
      ("started_at", started?.1 ?? .null),
      ("finished_at", finished?.1 ?? .null),
      ("threads", .int(threads)),
      ("shards", .int(Int64(reports.count))),
    ]
    var exitCode: Int32 = 0
    if failed {
      exitCode = 2
    } else if let limit = Self.number(first.value["policy"]?["max_quarantine_ratio"]),
      let records = totals["records"], records > 0,
      Double(totals["quarantined"] ?? 0) / Double(records) > limit
    {
      exitCode = 3
    }
    return (.object(members), exitCode)
  }

  private static func number(_ v: JSONValue?) -> Double? {
    switch v {
    case .int(let i)?: Double(i)
    case .double(let d)?: d
    default: nil
    }
  }
}
