import Foundation

/// Completion records for `--resume` (SPEC §6, §8): `DIR/_done/NAME.json`, written after an
/// input's outputs were renamed into place.
///
/// An input's earlier outputs are reused only when everything that decided their bytes is
/// proven unchanged: the tool (name, version, codec), `policy_sha256`, the side files in
/// their roles with their SHA-256s, the input's SHA-256, and the exact list of output files
/// the current options give, each re-hashed on disk. Anything else redoes the input.
struct CompletionRecords {
  /// `DIR/_done`.
  let folder: OutputFolder
  /// `DIR/kept`, `DIR/quarantine`, by the first component of an output's report path.
  let outputFolders: [String: OutputFolder]
  let tool: JSONValue
  let policySHA256: String
  /// Each side file as {role, sha256}, in the order they were given.
  let sideFiles: JSONValue
  /// Whether an input's outputs include `lineage/NAME`.
  let lineage: Bool

  init(
    folder: OutputFolder, outputFolders: [String: OutputFolder], lineage: Bool, tool: JSONValue,
    policySHA256: String, sideFiles: [(role: String, sha256: String)]
  ) {
    self.folder = folder
    self.outputFolders = outputFolders
    self.lineage = lineage
    self.tool = tool
    self.policySHA256 = policySHA256
    self.sideFiles = .array(
      sideFiles.map { .object([("role", .string($0.role)), ("sha256", .string($0.sha256))]) })
  }

  static func recordName(_ outputName: String) -> String { outputName + ".json" }

  /// The report paths of the files an input has under the current output options.
  func outputPaths(_ outputName: String) -> [String] {
    ["kept/\(outputName)", "quarantine/\(outputName)"]
      + (lineage ? ["lineage/\(outputName)"] : [])
  }

  /// Removes the completion record and every output file of `outputName`.
  func forget(outputName: String) {
    folder.remove(Self.recordName(outputName))
    for path in ["kept", "quarantine", "lineage"].map({ "\($0)/\(outputName)" }) {
      guard let (sub, name) = split(path) else { continue }
      sub.remove(name)
    }
  }

  private func split(_ path: String) -> (OutputFolder, String)? {
    guard let slash = path.firstIndex(of: "/"), let sub = outputFolders[String(path[..<slash])]
    else { return nil }
    let name = String(path[path.index(after: slash)...])
    guard !name.isEmpty, !name.contains("/") else { return nil }
    return (sub, name)
  }

  func record(input: InputReport, outputs: [OutputReport], outputName: String) {
    let value = JSONValue.object([
      ("tool", tool),
      ("policy_sha256", .string(policySHA256)),
      ("side_files", sideFiles),
      (
        "input",
        .object([
          ("path", .string(input.path)),
          ("sha256", .string(input.sha256 ?? "")),
          ("bytes_compressed", .int(Int64(input.bytesCompressed))),
          ("bytes_uncompressed", .int(Int64(input.bytesUncompressed))),
          ("counts", counts(input.counts)),
        ])
      ),
      ("outputs", .array(outputs.map(\.json))),
    ])
    // A record that cannot be written only costs a redo on the next resume.
    try? writeAtomically(Array(value.compact.utf8), to: Self.recordName(outputName), in: folder)
  }

  private func counts(_ c: RecordCounts) -> JSONValue {
    .object([
      ("lines", .int(Int64(c.lines))), ("blank_lines", .int(Int64(c.blankLines))),
      ("records", .int(Int64(c.records))), ("kept", .int(Int64(c.kept))),
      ("dropped", .int(Int64(c.dropped))), ("quarantined", .int(Int64(c.quarantined))),
      ("reasons", .array(c.reasons.map { .int(Int64($0)) })),
      ("jurisdiction", .array(c.jurisdiction.map { .int(Int64($0)) })),
    ])
  }

  /// What `--resume` does with one input.
  enum Check {
    /// Keep the earlier outputs; this is what the report says of them.
    case reuse(InputReport, [OutputReport])
    /// Redo the input; the text says why, where there was an earlier completion.
    case redo(String?)
  }

  /// Whether the earlier result of `input` may be kept.
  func check(input path: String, outputName: String) -> Check {
    guard path != "-" else { return .redo(nil) }
    guard let bytes = folder.contents(of: Self.recordName(outputName)),
      let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    else { return .redo(nil) }
    let name = InputSource.fileName(of: path)
    // Compared as canonical text: a decoded object's keys come back sorted.
    guard value["tool"]?.canonical == tool.canonical else {
      return .redo("\(name): redone, the earlier run used another tool version or codec")
    }
    guard value["policy_sha256"] == .string(policySHA256) else {
      return .redo("\(name): redone, the policy changed since the earlier run")
    }
    guard value["side_files"]?.canonical == sideFiles.canonical else {
      return .redo("\(name): redone, the consent ledger or tags changed since the earlier run")
    }
    guard let input = value["input"], case .string(let sha)? = input["sha256"],
      let current = try? fileSHA256(path), current == sha
    else { return .redo("\(name): redone, the input changed since the earlier run") }
    guard case .array(let outs)? = value["outputs"],
      let reused = restore(path, sha, input, outs, expected: outputPaths(outputName))
    else { return .redo("\(name): redone, its earlier outputs are missing or changed") }
    return .reuse(reused.0, reused.1)
  }

  /// The earlier report of the input, when its record lists exactly `expected` and each of
  /// those files still has the recorded size and SHA-256.
  private func restore(
    _ path: String, _ sha: String, _ input: JSONValue, _ outs: [JSONValue], expected: [String]
  ) -> (InputReport, [OutputReport])? {
    func int(_ v: JSONValue?) -> Int64? {
      if case .int(let i)? = v, i >= 0 { return i }
      return nil
    }
    guard outs.count == expected.count else { return nil }
    var outputs: [OutputReport] = []
    for (o, want) in zip(outs, expected) {
      guard case .string(let p)? = o["path"], p == want, case .string(let h)? = o["sha256"],
        let r = int(o["records"]), let b = int(o["bytes"]), let (sub, name) = split(p),
        let actual = sub.sizeAndSHA256(name), actual.size == UInt64(b), actual.sha256 == h
      else { return nil }
      outputs.append(OutputReport(path: p, sha256: h, records: Int(r), bytes: UInt64(b)))
    }
    guard let c = input["counts"], case .array(let reasons)? = c["reasons"],
      case .array(let juris)? = c["jurisdiction"], reasons.count == Reason.allCases.count,
      juris.count == JurisdictionCount.allCases.count,
      let bytesCompressed = int(input["bytes_compressed"]),
      let bytesUncompressed = int(input["bytes_uncompressed"]), let lines = int(c["lines"]),
      let blank = int(c["blank_lines"]), let records = int(c["records"]),
      let kept = int(c["kept"]), let dropped = int(c["dropped"]),
      let quarantined = int(c["quarantined"]), records == kept + dropped + quarantined,
      outputs[0].records == kept, outputs[1].records == quarantined
    else { return nil }
    var report = InputReport(path: path)
    report.sha256 = sha
    report.bytesCompressed = UInt64(bytesCompressed)
    report.bytesUncompressed = UInt64(bytesUncompressed)
    report.counts.lines = Int(lines)
    report.counts.blankLines = Int(blank)
    report.counts.records = Int(records)
    report.counts.kept = Int(kept)
    report.counts.dropped = Int(dropped)
    report.counts.quarantined = Int(quarantined)
    report.counts.reasons = reasons.map { Int(int($0) ?? 0) }
    report.counts.jurisdiction = juris.map { Int(int($0) ?? 0) }
    report.resumed = true
    return (report, outputs)
  }
}

/// SHA-256 of a whole file, streamed.
func fileSHA256(_ path: String) throws(InputError) -> String {
  let source = try InputSource(path: path)
  source.drain()
  return source.sha256Hex()
}
