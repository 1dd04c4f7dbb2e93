/// Pass 2 of ``IndexBuilder`` for one bucket: its run records, sorted by hash, folded into one
/// entry per user, exactly as ``ConsentIndex`` folds the same rows in memory. Buckets are
/// resolved in parallel, so tag sets and exact times are numbered within the bucket here;
/// ``IndexBuilder`` renumbers them in bucket order when it assembles the file.
struct IndexResolver {
  /// Distinct ids, and distinct ids per side file (in loading order).
  private(set) var users = 0
  private(set) var fileUsers: [Int]
  /// Users with something to say (an event for the purpose, a tag, a ledger error): the
  /// entries written. A user with none reads the same as one the index does not know.
  private(set) var entries = 0
  private(set) var entryBytes = 0
  /// This bucket's tag sets, by local number - 1: each a line of `tag_sets`.
  private(set) var tagSetLines: [String] = []
  /// This bucket's exact times, by local number: each a line of `exact_times`.
  private(set) var exactTimeLines: [Substring] = []
  private var entry: [UInt8] = []
  /// Orders valid grants at one instant (``ChildFacts/rank(unknownAge:)``).
  private let unknownAge: UnknownAgeRule

  init(files: Int, unknownAge: UnknownAgeRule) {
    fileUsers = [Int](repeating: 0, count: files)
    self.unknownAge = unknownAge
  }

  /// One run record's fields, by offset from its start.
  private struct Record {
    var hash: UInt64
    var op: UInt8
    var state: UInt8
    var file: Int
    var payload: Range<Int>
    var id: Range<Int>
    /// A grant's ``ChildFacts`` word (operations 5 and 6), else 0.
    var child: UInt32
  }

  /// The hash of the run record at `o` and where it ends.
  static func recordSpan(_ data: UnsafeRawBufferPointer, at o: Int) -> (UInt64, Int) {
    let r = record(data, at: o)
    return (r.hash, r.id.upperBound)
  }

  private static func record(_ data: UnsafeRawBufferPointer, at o: Int) -> Record {
    let h = data.loadUnaligned(fromByteOffset: o, as: UInt64.self)
    let op = data[o + 8]
    let file = Int(data.loadUnaligned(fromByteOffset: o + 10, as: UInt16.self))
    let idLength = Int(data.loadUnaligned(fromByteOffset: o + 12, as: UInt32.self))
    var p = o + 16
    var child: UInt32 = 0
    switch op {
    case 1, 5: p += 8
    case 2, 6:
      p += 2 + Int(UInt16(littleEndian: data.loadUnaligned(fromByteOffset: p, as: UInt16.self)))
    case 4: p += 1 + Int(data[p])
    default: break
    }
    let payloadEnd = p
    if op >= 5 {
      child = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: p, as: UInt32.self))
      p += 4
    }
    return Record(
      hash: UInt64(littleEndian: h), op: op == 5 ? 1 : op == 6 ? 2 : op, state: data[o + 9],
      file: file, payload: (o + 16)..<payloadEnd, id: p..<(p + idLength), child: child)
  }

  /// Folds the bucket's records `d` and appends one resolved entry per user to `out`, in
  /// hash order: hash (u64), length (u32), the entry.
  mutating func resolve(
    _ d: UnsafeRawBufferPointer, records: Int, into out: SequentialWriter
  ) throws(IndexBuildError) {
    var keys: [(hash: UInt64, offset: Int)] = []
    keys.reserveCapacity(records)
    var o = 0
    while o < d.count {
      let r = IndexResolver.record(d, at: o)
      keys.append((r.hash, o))
      o = r.id.upperBound
    }
    // A stable sort: records of one hash stay in the order they were read.
    keys.sort { $0.hash < $1.hash }
    var k = 0
    var offsets: [Int] = []
    while k < keys.count {
      var end = k + 1
      while end < keys.count && keys[end].hash == keys[k].hash { end += 1 }
      offsets.removeAll(keepingCapacity: true)
      for j in k..<end { offsets.append(keys[j].offset) }
      // Equal hashes, almost always one id: split by id bytes, first seen first.
      while !offsets.isEmpty {
        let first = IndexResolver.record(d, at: offsets[0]).id
        func isFirst(_ o: Int) -> Bool {
          d[IndexResolver.record(d, at: o).id].elementsEqual(d[first])
        }
        if offsets.count == 1 || offsets.allSatisfy(isFirst) {
          try fold(offsets, d, into: out)
          break
        }
        let same = offsets.filter(isFirst)
        offsets.removeAll(where: isFirst)
        try fold(same, d, into: out)
      }
      k = end
    }
  }

  /// A canonical tag signal (at most six ASCII bytes) as one number whose order is the
  /// signals' byte order.
  private static func packedCode(_ d: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64 {
    var v: UInt64 = 0
    for (k, i) in range.enumerated() where k < 8 { v |= UInt64(d[i]) << (56 - 8 * UInt64(k)) }
    return v
  }

  private static func codeText(_ v: UInt64) -> String {
    var bytes: [UInt8] = []
    for k in 0..<8 {
      let b = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(k)))
      if b == 0 { break }
      bytes.append(b)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private var files: [Int] = []
  private var codes: [UInt64] = []
  private var singleSets: [UInt64: Int] = [:]
  private var multiSets: [[UInt64]: Int] = [:]

  private mutating func tagSet(_ codes: [UInt64]) throws(IndexBuildError) -> Int {
    if codes.isEmpty { return 0 }
    if codes.count == 1, let known = singleSets[codes[0]] { return known }
    let sorted = codes.sorted()
    if codes.count > 1, let known = multiSets[sorted] { return known }
    let set = singleSets.count + multiSets.count + 1
    guard set < 1 << 24 else {
      throw IndexBuildError(message: "more than 16,777,215 distinct sets of tags")
    }
    if codes.count == 1 { singleSets[codes[0]] = set } else { multiSets[sorted] = set }
    tagSetLines.append(sorted.map(IndexResolver.codeText).joined(separator: ","))
    return set
  }

  private mutating func fold(
    _ offsets: [Int], _ d: UnsafeRawBufferPointer, into out: SequentialWriter
  ) throws(IndexBuildError) {
    users += 1
    files.removeAll(keepingCapacity: true)
    codes.removeAll(keepingCapacity: true)
    var decided = false
    var decidedState: UInt8 = 0
    // The deciding time: packed words order as their instants do; an exact time is kept
    // as its line too.
    var decidedWord: UInt64 = 0
    var decidedExact: (Timestamp, Substring)?
    var decidedChild: UInt32 = 0
    var ledgerError = false
    /// Whether an event at the deciding instant with `state` and `child` replaces the held one.
    func wins(_ state: UInt8, _ child: UInt32) -> Bool {
      if state != decidedState { return state > decidedState }
      return state == ConsentState.valid.rawValue
        && ChildFacts(word: child).rank(unknownAge: unknownAge)
          > ChildFacts(word: decidedChild).rank(unknownAge: unknownAge)
    }
    var id = 0..<0
    for o in offsets {
      let r = IndexResolver.record(d, at: o)
      id = r.id
      if !files.contains(r.file) {
        files.append(r.file)
        fileUsers[r.file - 1] += 1
      }
      switch r.op {
      case 1:
        let w = UInt64(
          littleEndian: d.loadUnaligned(fromByteOffset: r.payload.lowerBound, as: UInt64.self))
        if decided {
          let later: Bool
          let same: Bool
          if let (t, _) = decidedExact {
            let time = PackedTime.unpack(w)
            (later, same) = (time > t, time == t)
          } else {
            (later, same) = (w > decidedWord, w == decidedWord)
          }
          // The latest event decides; at equal times the more restrictive (higher) state.
          guard later || (same && wins(r.state, r.child)) else { continue }
        }
        (decided, decidedState, decidedWord, decidedExact) = (true, r.state, w, nil)
        decidedChild = r.child
      case 2:
        let line = Substring(
          String(decoding: d[(r.payload.lowerBound + 2)..<r.payload.upperBound], as: UTF8.self))
        guard let time = IndexFile.parseExactLine(line) else {
          throw IndexBuildError(message: "a run holds an unreadable time")
        }
        if decided {
          let current = decidedExact?.0 ?? PackedTime.unpack(decidedWord)
          guard time > current || (time == current && wins(r.state, r.child)) else { continue }
        }
        (decided, decidedState, decidedWord, decidedExact) = (true, r.state, 0, (time, line))
        decidedChild = r.child
      case 3: ledgerError = true
      case 4:
        let code = IndexResolver.packedCode(d, (r.payload.lowerBound + 1)..<r.payload.upperBound)
        if !codes.contains(code) { codes.append(code) }
      default: break
      }
    }
    guard decided || ledgerError || !codes.isEmpty else { return }
    entries += 1
    entry.removeAll(keepingCapacity: true)
    func append<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { entry.append(contentsOf: $0) }
    }
    var timeWord = decidedWord
    if let (_, line) = decidedExact {
      timeWord = PackedTime.exactBit | UInt64(exactTimeLines.count)
      exactTimeLines.append(line)
    }
    append(timeWord)
    let idBytes = UnsafeRawBufferPointer(rebasing: d[id])
    let numeric = IndexFile.numericValue(idBytes)
    var flags = decided ? decidedState | IndexFile.decidedBit : 0
    if ledgerError { flags |= IndexFile.ledgerErrorBit }
    if numeric != nil { flags |= IndexFile.numericIdBit }
    if decidedChild != 0 { flags |= IndexFile.childBit }
    append(UInt32(flags) | UInt32(try tagSet(codes)) << 8)
    if decidedChild != 0 { append(decidedChild) }
    if let numeric {
      append(numeric)
    } else if idBytes.count < 255 {
      append(UInt8(idBytes.count))
      entry.append(contentsOf: idBytes)
    } else {
      append(UInt8(255))
      append(UInt32(idBytes.count))
      entry.append(contentsOf: idBytes)
    }
    entryBytes += entry.count
    try out.write(IndexResolver.record(d, at: offsets[0]).hash)
    try out.write(UInt32(entry.count))
    try out.write(entry)
  }
}
