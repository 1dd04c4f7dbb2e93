/// What the report says of one input.
public struct InputReport: Sendable {
  public var path: String
  public var sha256: String?
  public var bytesCompressed: UInt64 = 0
  public var bytesUncompressed: UInt64 = 0
  public var counts = RecordCounts()
  public var status = InputStatus.ok
  /// Why it failed, by file and line, never record content.
  public var error: String?
  /// True when a `--resume` run kept this input's earlier outputs.
  public var resumed = false
}

/// One written output file.
public struct OutputReport: Sendable, Equatable {
  /// Relative to the output folder.
  public var path: String
  public var sha256: String
  /// Lines: records for `kept` and `quarantine`, users for `lineage`.
  public var records: Int
  public var bytes: UInt64

  /// `kept`, `quarantine` or `lineage`: the folder the file is in.
  public var kind: String { String(path.prefix { $0 != "/" }) }

  /// As the report (and a completion record) writes it.
  public var json: JSONValue {
    .object([
      ("path", .string(path)), ("kind", .string(kind)), ("sha256", .string(sha256)),
      ("records", .int(Int64(records))), ("bytes", .int(Int64(bytes))),
    ])
  }
}

/// The run's evidence: inputs, ledger and policy hashes tied to output hashes and counts
/// (SPEC §4 `report.json`).
public struct FilterReport: Sendable {
  public static let toolName = "consentgate"
  public static let toolVersion = "0.1.0"

  public var policy: Policy
  public var inputs: [InputReport] = []
  public var consentFiles: [SideFileSummary] = []
  public var jurisdictionFiles: [SideFileSummary] = []
  /// Set when the run used a consent index (SPEC §9): the report's `index` key.
  public var index: IndexSummary?
  public var outputs: [OutputReport] = []
  public var warnings: [String] = []
  public var startedAt: Timestamp
  public var finishedAt: Timestamp
  public var threads: Int
  /// Set for a shard run (SPEC §10): its report has a `shard` key.
  public var shard: Shard?
  /// For `purge` (SPEC §11): the report the inputs came from, as (SHA-256, path).
  public var derivedFrom: (sha256: String, path: String)?

  public init(policy: Policy, startedAt: Timestamp, threads: Int) {
    self.policy = policy
    self.startedAt = startedAt
    self.finishedAt = startedAt
    self.threads = threads
  }

  /// Counts over the inputs whose status is `ok`.
  public var totals: RecordCounts {
    var t = RecordCounts()
    for input in inputs where input.status == .ok { t.add(input.counts) }
    return t
  }

  /// quarantined ÷ records over `ok` inputs; nil with no records.
  public var quarantineRatio: Double? {
    let t = totals
    return t.records == 0 ? nil : Double(t.quarantined) / Double(t.records)
  }

  /// `tool`: name, version and the codecs that wrote the outputs.
  public var tool: JSONValue {
    .object([
      ("name", .string(Self.toolName)), ("version", .string(Self.toolVersion)),
      ("codec", .string(Codecs.description(policy))),
    ])
  }

  public var policySHA256: String { sha256Hex(Array(policy.canonicalJSON.utf8)) }

  private var indexJSON: JSONValue { index?.json ?? .null }

  public var json: JSONValue {
    let t = totals
    func sideFiles(_ files: [SideFileSummary]) -> JSONValue { .array(files.map(\.json)) }
    return .object(
      [
        ("tool", tool),
        ("policy", policy.json),
        ("policy_sha256", .string(policySHA256)),
        ("cutoff", .string(policy.cutoff.rfc3339)),
        (
          "inputs",
          .array(
            inputs.map { input in
              var members: [(String, JSONValue)] = [
                ("path", .string(input.path)),
                ("sha256", input.sha256.map(JSONValue.string) ?? .null),
                ("bytes_compressed", .int(Int64(input.bytesCompressed))),
                ("bytes_uncompressed", .int(Int64(input.bytesUncompressed))),
                ("lines", .int(Int64(input.counts.lines))),
                ("blank_lines", .int(Int64(input.counts.blankLines))),
                ("records", .int(Int64(input.counts.records))),
                ("kept", .int(Int64(input.counts.kept))),
                ("dropped", .int(Int64(input.counts.dropped))),
                ("quarantined", .int(Int64(input.counts.quarantined))),
                ("status", .string(input.status.rawValue)),
              ]
              if let error = input.error { members.append(("error", .string(error))) }
              if input.resumed { members.append(("resumed", .bool(true))) }
              return .object(members)
            })
        ),
        ("consent", sideFiles(consentFiles)),
        ("jurisdictions", sideFiles(jurisdictionFiles)),
        ("index", indexJSON),
        (
          "totals",
          .object([
            ("records", .int(Int64(t.records))), ("kept", .int(Int64(t.kept))),
            ("dropped", .int(Int64(t.dropped))), ("quarantined", .int(Int64(t.quarantined))),
          ])
        ),
        ("reasons", .object(Reason.allCases.map { ($0.code, .int(Int64(t.count(of: $0)))) })),
        (
          "jurisdiction",
          .object(
            JurisdictionCount.allCases.map { ($0.key, .int(Int64(t.jurisdiction[$0.rawValue]))) })
        ),
        ("outputs", .array(outputs.map(\.json))),
        ("warnings", .array(warnings.map(JSONValue.string))),
        ("started_at", .string(startedAt.rfc3339)),
        ("finished_at", .string(finishedAt.rfc3339)),
        ("threads", .int(Int64(threads))),
      ]
        + (derivedFrom.map {
          [
            (
              "derived_from",
              .object([("report_sha256", .string($0.sha256)), ("path", .string($0.path))])
            )
          ]
        } ?? [])
        + (shard.map {
          [
            (
              "shard",
              .object([("index", .int(Int64($0.index))), ("count", .int(Int64($0.count)))])
            )
          ]
        } ?? []))
  }
}
