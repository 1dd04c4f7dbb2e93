import Foundation

/// Completion records for `--resume` (SPEC §6): `DIR/_done/NAME.json`, written after an
/// input's outputs were renamed into place. An input is skipped on resume only when its
/// SHA-256, every side file's SHA-256 and `policy_sha256` are unchanged and its outputs are
/// still there with the recorded sizes.
struct CompletionLedger {
  let directory: String
  let policySHA256: String
  let sideFileHashes: [String]

  private func recordPath(_ outputName: String) -> String {
    "\(directory)/_done/\(outputName).json"
  }

  /// Removes every earlier output, completion record and stray temporary file.
  func clearAll() {
    let fm = FileManager.default
    for sub in ["kept", "quarantine", "_done"] {
      let folder = "\(directory)/\(sub)"
      for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] {
        unlink("\(folder)/\(name)")
      }
    }
  }

  func forget(outputName: String) {
    unlink(recordPath(outputName))
  }

  func record(input: InputReport, outputs: [OutputReport], outputName: String) {
    let value = JSONValue.object([
      ("policy_sha256", .string(policySHA256)),
      ("side_files", .array(sideFileHashes.map(JSONValue.string))),
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
    try? writeAtomically(Array(value.compact.utf8), to: recordPath(outputName))
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
    guard let data = FileManager.default.contents(atPath: recordPath(outputName)),
      let value = try? JSONDecoder().decode(JSONValue.self, from: data)
    else { return .redo(nil) }
    let name = InputSource.fileName(of: path)
    guard value["policy_sha256"] == .string(policySHA256) else {
      return .redo("\(name): redone, the policy changed since the earlier run")
    }
    guard value["side_files"] == .array(sideFileHashes.map(JSONValue.string)) else {
      return .redo("\(name): redone, the consent ledger or tags changed since the earlier run")
    }
    guard let input = value["input"], case .string(let sha)? = input["sha256"],
      let current = try? fileSHA256(path), current == sha
    else { return .redo("\(name): redone, the input changed since the earlier run") }
    guard case .array(let outs)? = value["outputs"], let reused = restore(path, sha, input, outs)
    else { return .redo("\(name): redone, its earlier outputs are missing or changed") }
    return .reuse(reused.0, reused.1)
  }

  private func restore(_ path: String, _ sha: String, _ input: JSONValue, _ outs: [JSONValue])
    -> (InputReport, [OutputReport])?
  {
    func int(_ v: JSONValue?) -> Int64? {
      if case .int(let i)? = v { return i }
      return nil
    }
    var outputs: [OutputReport] = []
    for o in outs {
      guard case .string(let p)? = o["path"], case .string(let h)? = o["sha256"],
        let r = int(o["records"]), let b = int(o["bytes"])
      else { return nil }
      var info = stat()
      guard stat("\(directory)/\(p)", &info) == 0, UInt64(info.st_size) == UInt64(b) else {
        return nil
      }
      outputs.append(OutputReport(path: p, sha256: h, records: Int(r), bytes: UInt64(b)))
    }
    guard let c = input["counts"], case .array(let reasons)? = c["reasons"],
      case .array(let juris)? = c["jurisdiction"], reasons.count == Reason.allCases.count,
      juris.count == JurisdictionCount.allCases.count
    else { return nil }
    var report = InputReport(path: path)
    report.sha256 = sha
    report.bytesCompressed = UInt64(int(input["bytes_compressed"]) ?? 0)
    report.bytesUncompressed = UInt64(int(input["bytes_uncompressed"]) ?? 0)
    report.counts.lines = Int(int(c["lines"]) ?? 0)
    report.counts.blankLines = Int(int(c["blank_lines"]) ?? 0)
    report.counts.records = Int(int(c["records"]) ?? 0)
    report.counts.kept = Int(int(c["kept"]) ?? 0)
    report.counts.dropped = Int(int(c["dropped"]) ?? 0)
    report.counts.quarantined = Int(int(c["quarantined"]) ?? 0)
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
