import Testing

@testable import ConsentGate

/// The index's storage: exact id comparison, packed times, batched lookups, copies.
@Suite struct ConsentIndexTests {
  /// Ids of every shape: empty-free, short, 8-byte multiples, long, sharing prefixes, bytes
  /// that differ only at the end, non-ASCII.
  private func ids(_ count: Int, seed: UInt64) -> [[UInt8]] {
    var rng = SplitMix64(seed: seed)
    var result: [[UInt8]] = []
    var seen: Set<[UInt8]> = []
    while result.count < count {
      let length = [1, 7, 8, 9, 15, 16, 17, 36, 300][Int(rng.next() % 9)]
      var id = [UInt8](repeating: UInt8(ascii: "a"), count: length)
      for k in 0..<length where rng.next() % 3 == 0 {
        id[k] = UInt8(truncatingIfNeeded: rng.next())
      }
      if seen.insert(id).inserted { result.append(id) }
    }
    return result
  }

  @Test func everyInsertedIdIsFoundAndNoOtherIs() {
    var index = ConsentIndex()
    let known = ids(30_000, seed: 1)
    var entries: [ConsentIndex.Entry] = []
    for id in known {
      let (e, first) = id.withUnsafeBytes { index.insert($0, file: 0) }
      #expect(first)
      entries.append(e)
    }
    #expect(index.count == known.count)
    // Growing moved every slot: each id must still lead to its own entry.
    for (id, e) in zip(known, entries) {
      #expect(id.withUnsafeBytes { index.find($0) } == e)
    }
    let knownSet = Set(known)
    for id in ids(30_000, seed: 2) where !knownSet.contains(id) {
      #expect(id.withUnsafeBytes { index.find($0) } == nil)
    }
    // A prefix or an extension of a known id is another id: found only as itself.
    let entryOf = Dictionary(uniqueKeysWithValues: zip(known, entries))
    for id in known.prefix(1000) {
      for other in [Array(id.dropLast()), id + [0], id + [UInt8(ascii: "a")]] {
        #expect(other.withUnsafeBytes { index.find($0) } == entryOf[other])
      }
    }
  }

  @Test func batchedLookupsEqualSingleLookups() {
    var index = ConsentIndex()
    let known = ids(5_000, seed: 3)
    for id in known { _ = id.withUnsafeBytes { index.insert($0, file: 0) } }
    // Hits and misses interleaved, with batch sizes that leave partial groups.
    let probes = Array(known.shuffled().prefix(2_500)) + ids(2_500, seed: 4)
    for size in [1, 7, 8, 9, 100, probes.count] {
      var k = 0
      while k < probes.count {
        let group = Array(probes[k..<min(k + size, probes.count)])
        let views = group.map { $0.withUnsafeBytes { $0 } }
        var results = [ConsentIndex.Entry?](repeating: -7, count: group.count)
        views.withUnsafeBufferPointer { batch in
          results.withUnsafeMutableBufferPointer { index.find(batch: batch, into: $0) }
        }
        for (id, r) in zip(group, results) {
          #expect(r == id.withUnsafeBytes { index.find($0) })
        }
        k += size
      }
    }
  }

  @Test(arguments: [
    Timestamp(seconds: 0),
    Timestamp(seconds: 1_700_000_000, fraction: 123_456_000_000_000_000),
    Timestamp(seconds: -62_135_596_800),  // 0001-01-01
    Timestamp(seconds: 253_402_300_799, fraction: 999_999_000_000_000_000),  // 9999-12-31
    // Below a microsecond, or beyond the packed range: kept exactly, aside.
    Timestamp(seconds: 1_700_000_000, fraction: 1),
    Timestamp(seconds: 1_700_000_000, fraction: 0, subFraction: 5),
    Timestamp(seconds: 1 << 50),
    Timestamp(seconds: -(1 << 50)),
    Timestamp.parseRFC3339("2025-01-01T00:00:00.0000000000000000000000000000000000001Z")!,
  ])
  func decidingTimesComeBackExactly(_ time: Timestamp) {
    var index = ConsentIndex()
    let (e, _) = Array("u".utf8).withUnsafeBytes { index.insert($0, file: 0) }
    index.offer(e, state: .valid, at: time)
    #expect(index.decidedAt(index.facts(e)) == time)
    #expect(index.facts(e).state == .valid)
  }

  @Test func laterExactTimesReplaceEarlierOnes() {
    var index = ConsentIndex()
    let (e, _) = Array("u".utf8).withUnsafeBytes { index.insert($0, file: 0) }
    let times = [
      Timestamp(seconds: 10, fraction: 1), Timestamp(seconds: 10, fraction: 2),
      Timestamp(seconds: 11), Timestamp(seconds: 11, fraction: 0, subFraction: 1),
    ]
    for t in times {
      index.offer(e, state: .valid, at: t)
      #expect(index.decidedAt(index.facts(e)) == t)
    }
    index.offer(e, state: .withdrawn, at: Timestamp(seconds: 9))
    #expect(index.facts(e).state == .valid)
  }

  @Test func aCopyDoesNotSeeLaterChanges() {
    var index = ConsentIndex()
    let (e, _) = Array("u".utf8).withUnsafeBytes { index.insert($0, file: 0) }
    index.offer(e, state: .valid, at: Timestamp(seconds: 1))
    let snapshot = index
    index.offer(e, state: .objected, at: Timestamp(seconds: 2))
    _ = Array("v".utf8).withUnsafeBytes { index.insert($0, file: 0) }
    #expect(snapshot.facts(e).state == .valid)
    #expect(snapshot.count == 1)
    #expect(index.facts(e).state == .objected)
    #expect(index.count == 2)
  }

  @Test func distinctUsersAreCountedPerFile() {
    var index = ConsentIndex()
    let u = Array("u".utf8)
    #expect(u.withUnsafeBytes { index.insert($0, file: 0) }.1)
    #expect(!u.withUnsafeBytes { index.insert($0, file: 0) }.1)
    #expect(u.withUnsafeBytes { index.insert($0, file: 1) }.1)
  }

  @Test func compactKeepsEverything() {
    var index = ConsentIndex()
    let known = ids(2_000, seed: 5)
    for id in known {
      let (e, _) = id.withUnsafeBytes { index.insert($0, file: 0) }
      index.offer(e, state: .valid, at: Timestamp(seconds: Int64(id.count)))
    }
    index.compact()
    for id in known {
      let facts = id.withUnsafeBytes { index.facts(for: $0) }
      #expect(index.decidedAt(facts) == Timestamp(seconds: Int64(id.count)))
    }
  }
}
