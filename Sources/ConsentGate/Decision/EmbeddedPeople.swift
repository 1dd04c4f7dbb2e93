/// SPEC §13.1 for ``RecordDecider``: the people a record embeds, found in the same scan as
/// its author and judged by the same rows.
extension RecordDecider {
  /// What an embedded path found that no lookup can clear (SPEC §13.1).
  public enum EmbeddedFault: Sendable {
    case none
    /// A value that is not an id: `third_party_data`.
    case unidentified
    /// A key on an embedded path occurs twice: `duplicate_key`.
    case duplicate
  }

  /// Collects the embedded people of a record whose author was read (SPEC §13.1): their
  /// canonical ids into ``embeddedIds``, leaving out the author's own.
  func examineEmbedded(
    _ examined: inout Examined, _ base: UnsafeRawPointer, ids: IdScratch
  ) {
    embeddedIds.removeAll(keepingCapacity: true)
    for k in embeddedFields where scanner.field(k).duplicate {
      examined.embeddedFault = .duplicate
      return
    }
    func add(_ value: FieldValue) {
      switch value.kind {
      case .absent, .null: return
      case .other:
        examined.embeddedFault = .unidentified
        return
      case .integer, .string: break
      }
      var id = UnsafeRawBufferPointer(start: base + value.start, count: value.end - value.start)
      if value.kind == .string && value.escaped {
        textScratch.removeAll(keepingCapacity: true)
        guard JSONString.unescape(id, into: &textScratch) else {
          examined.embeddedFault = .unidentified
          return
        }
        id = ids.append(textScratch)
      }
      if id.isEmpty {
        examined.embeddedFault = .unidentified
        return
      }
      if id.count == examined.id.count
        && bytesEqual(id.baseAddress!, examined.id.baseAddress!, count: id.count)
      {
        return
      }
      embeddedIds.append(id)
    }
    for k in embeddedFields { add(scanner.field(k)) }
    for match in scanner.matches { add(match.value) }
    examined.embeddedCount = embeddedIds.count
  }

  /// The verdict of a record its author's rows would keep, once its embedded people are
  /// judged: the author's, `duplicate_key`, or `third_party_data` as `--third-party` says.
  func judgeEmbedded(_ examined: Examined, author verdict: Verdict, embedded: (Int) -> UserFacts)
    -> Verdict
  {
    let thirdParty = Verdict(
      reason: .thirdPartyData, jurisdiction: verdict.jurisdiction,
      disposition: policy.thirdParty == .drop ? .drop : .quarantine)
    switch examined.embeddedFault {
    case .duplicate: return Verdict(reason: .duplicateKey, jurisdiction: verdict.jurisdiction)
    case .unidentified: return thirdParty
    case .none: break
    }
    for k in 0..<examined.embeddedCount {
      let person = embedded(k)
      let judged = RecordDecider.decide(
        policy: policy, facts: person, recordSignals: SignalSet(),
        grantedAt: { index.decidedAt(person) }, timeRows: false, recordTime: { .missing })
      if judged.disposition != .keep { return thirdParty }
    }
    return verdict
  }
}
