/// Per-input (or total) tallies: lines, records, dispositions, reasons, jurisdictions.
public struct RecordCounts: Sendable, Equatable {
  public var lines = 0
  public var blankLines = 0
  public var records = 0
  public var kept = 0
  public var dropped = 0
  public var quarantined = 0
  /// Indexed by ``Reason/rawValue``.
  public var reasons = [Int](repeating: 0, count: Reason.allCases.count)
  /// Indexed by ``JurisdictionCount/rawValue``.
  public var jurisdiction = [Int](repeating: 0, count: JurisdictionCount.allCases.count)

  public init() {}

  @inline(__always)
  mutating func count(_ verdict: Verdict) {
    records += 1
    reasons[Int(verdict.reason.rawValue)] += 1
    switch verdict.disposition {
    case .keep: kept += 1
    case .drop: dropped += 1
    case .quarantine: quarantined += 1
    }
    if let j = verdict.jurisdiction { jurisdiction[j.rawValue] += 1 }
  }

  public mutating func add(_ other: RecordCounts) {
    lines += other.lines
    blankLines += other.blankLines
    records += other.records
    kept += other.kept
    dropped += other.dropped
    quarantined += other.quarantined
    for k in reasons.indices { reasons[k] += other.reasons[k] }
    for k in jurisdiction.indices { jurisdiction[k] += other.jurisdiction[k] }
  }

  public func count(of reason: Reason) -> Int { reasons[Int(reason.rawValue)] }
}
