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

  init(kept: OutputFile, quarantine: OutputFile) {
    self.kept = kept
    self.quarantine = quarantine
  }

  /// Counts the block and writes its bytes; after a write error only counts.
  func consume(_ outcome: BlockOutcome) {
    counts.add(outcome.counts)
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

  func fail(_ error: OutputError) {
    if writeError == nil { writeError = error }
  }
}
