/// Receives one input's block outcomes in block order and writes them to its two output
/// files, counting as it goes.
///
/// `@unchecked Sendable`: it is used by one thread at a time. During an input the pool's
/// writer thread owns it; before ``OrderedWorkPool/startInput(_:)`` and after
/// ``OrderedWorkPool/finishInput()`` returns, the reading thread does. Both hand-overs
/// happen under the pool's lock, which orders the accesses.
final class BlockSink: @unchecked Sendable {
  let kept: OutputFile
  let quarantine: OutputFile
  private(set) var counts = RecordCounts()
  private(set) var writeError: OutputError?
  /// With lineage on: kept records per canonical user id (SPEC §11), for `lineage/NAME`.
  /// Grows with the input's distinct kept users, not with its records.
  private(set) var keptPerUser: [[UInt8]: Int]?

  init(kept: OutputFile, quarantine: OutputFile, lineage: Bool = false) {
    self.kept = kept
    self.quarantine = quarantine
    keptPerUser = lineage ? [:] : nil
  }

  /// Counts the block and writes its bytes; after a write error only counts.
  func consume(_ outcome: BlockOutcome) {
    counts.add(outcome.counts)
    if keptPerUser != nil { countUsers(outcome.keptIds) }
    guard writeError == nil else { return }
    do {
      if let source = outcome.source {
        try source.withUnsafeBytes { bytes throws(OutputError) in
          try kept.write(runs: outcome.keptRuns, of: bytes)
        }
      } else {
        try kept.write(outcome.kept)
      }
      try quarantine.write(outcome.quarantine)
      kept.records += outcome.keptRecords
      quarantine.records += outcome.quarantineRecords
    } catch {
      writeError = error
    }
  }

  private func countUsers(_ packed: [UInt8]) {
    var at = 0
    while at + 4 <= packed.count {
      let length =
        Int(packed[at]) | Int(packed[at + 1]) << 8 | Int(packed[at + 2]) << 16
        | Int(packed[at + 3]) << 24
      let id = Array(packed[(at + 4)..<(at + 4 + length)])
      keptPerUser![id, default: 0] += 1
      at += 4 + length
    }
  }

  func fail(_ error: OutputError) {
    if writeError == nil { writeError = error }
  }
}
