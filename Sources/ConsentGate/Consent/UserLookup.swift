/// Where a run finds its users' facts: the table loaded from `--consent` and
/// `--jurisdictions`, or a mapped index file (`--index`, SPEC §9). Both give the same facts
/// for the same side files and policy.
public enum UserLookup: Sendable {
  case loaded(ConsentIndex)
  case mapped(MappedLookup)

  /// Looks up many ids at once (``findBatched(_:ids:into:)``).
  public func find(
    batch ids: UnsafeBufferPointer<UnsafeRawBufferPointer>,
    into results: UnsafeMutableBufferPointer<Int?>
  ) {
    switch self {
    case .loaded(let index): findBatched(index, ids: ids, into: results)
    case .mapped(let index): findBatched(index, ids: ids, into: results)
    }
  }

  /// The facts of an entry a lookup returned.
  @inline(__always)
  public func facts(_ e: Int) -> UserFacts {
    switch self {
    case .loaded(let index): index.facts(e)
    case .mapped(let index): index.facts(e)
    }
  }

  /// The entry of one id, or nil: one probe, for callers that look up one record at a time
  /// (`audit`, `explain`), without the batch machinery of ``find(batch:into:)``.
  public func find(_ id: UnsafeRawBufferPointer) -> Int? {
    switch self {
    case .loaded(let index): return index.find(id)
    case .mapped(let index):
      let h = ConsentIndex.hash(id)
      return index.probe(id, h, from: index.home(h))
    }
  }

  /// The facts about `id`; a user nobody named has no consent and no tags.
  public func facts(for id: UnsafeRawBufferPointer) -> UserFacts {
    find(id).map(facts) ?? .unknown
  }

  /// `recorded_at` of the event that decided `facts`, nil when none did.
  public func decidedAt(_ facts: UserFacts) -> Timestamp? {
    switch self {
    case .loaded(let index): index.decidedAt(facts)
    case .mapped(let index): index.decidedAt(facts)
    }
  }
}
