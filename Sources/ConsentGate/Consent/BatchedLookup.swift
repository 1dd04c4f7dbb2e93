/// A hash table of user ids probed by slot: the in-memory ``ConsentIndex`` and the mapped
/// ``MappedIndex`` share the batched lookup below through it.
protocol ProbedTable {
  /// Lookups per stage of ``findBatched(_:ids:into:)``: enough to keep this table's misses
  /// in flight.
  static var batchWidth: Int { get }
  /// The slot where the probe for hash `h` starts; its memory is requested ahead.
  func home(_ h: UInt64) -> Int
  func prefetchSlot(_ slot: Int)
  /// The first slot from `slot` on whose hash tag matches `h` (its entry is requested
  /// ahead), or where the probe ends.
  func firstCandidate(_ h: UInt64, from slot: Int) -> Int
  /// The entry of `id` when it is at or after `slot`.
  func probe(_ id: UnsafeRawBufferPointer, _ h: UInt64, from slot: Int) -> Int?
}

/// Looks up many ids at once: `results[k]` becomes the entry of `ids[k]`, or nil.
///
/// One by one, a table of millions of users costs a full memory latency per miss. Here the
/// work runs as a three-stage software pipeline over groups of ids: hash a group and request
/// its slots; for the group before, find the first slot with a matching tag and request its
/// entry; for the group before that, compare the ids. Each request has a group's worth of
/// work to hide behind, and many misses are in flight at once.
func findBatched<Table: ProbedTable>(
  _ table: Table, ids: UnsafeBufferPointer<UnsafeRawBufferPointer>,
  into results: UnsafeMutableBufferPointer<Int?>
) {
  precondition(results.count >= ids.count)
  let width = Table.batchWidth
  let groups = (ids.count + width - 1) / width
  // Per id in flight: its hash, then the slot where stage 3 starts comparing.
  withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 3 * width) { hashes in
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * width) { starts in
      for g in 0..<(groups + 2) {
        if g < groups {
          let first = g * width
          let r = (g % 3) * width
          for j in 0..<min(width, ids.count - first) {
            let h = ConsentIndex.hash(ids[first + j])
            hashes[r + j] = h
            let slot = table.home(h)
            starts[r + j] = slot
            table.prefetchSlot(slot)
          }
        }
        if g >= 1 && g - 1 < groups {
          let first = (g - 1) * width
          let r = ((g - 1) % 3) * width
          for j in 0..<min(width, ids.count - first) {
            starts[r + j] = table.firstCandidate(hashes[r + j], from: starts[r + j])
          }
        }
        if g >= 2 {
          let first = (g - 2) * width
          let r = ((g - 2) % 3) * width
          for j in 0..<min(width, ids.count - first) {
            results[first + j] = table.probe(ids[first + j], hashes[r + j], from: starts[r + j])
          }
        }
      }
    }
  }
}
