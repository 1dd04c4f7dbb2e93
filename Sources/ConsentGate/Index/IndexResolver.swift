/// Pass 2 of ``IndexBuilder``: the run records of a few buckets, sorted by hash, folded into
/// one entry per user, exactly as ``ConsentIndex`` folds the same rows in memory.
struct IndexResolver {
  /// Distinct ids, and distinct ids per side file (in loading order).
  private(set) var users = 0
  private(set) var fileUsers: [Int]
  /// Users with something to say (an event for the purpose, a tag, a ledger error): the
  /// entries written. A user with none reads the same as one the index does not know.
  private(set) var entries = 0
  private(set) var entryBytes = 0
  private var tagSets: [[UInt8]: Int] = [:]
  private(set) var tagSetLines = ""
  private(set) var exactTimeLines = ""
  private var exactTimes = 0
  private var entry: [UInt8] = []

  init(files: Int) {
    fileUsers = [Int](repeating: 0, count: files)
  }

  /// One run record's fields, by offset from its start.
  private struct Record {
    var hash: UInt64
    var op: UInt8
    var state: UInt8
    var file: Int
    var payload: Range<Int>
    var id: Range<Int>
  }

  private static func record(_ data: UnsafeRawBufferPointer, at o: Int) -> Record {
    let h = data.loadUnaligned(fromByteOffset: o, as: UInt64.self)
    let op = data[o + 8]
    let file = Int(data.loadUnaligned(fromByteOffset: o + 10, as: UInt16.self))
    let idLength = Int(data.loadUnaligned(fromByteOffset: o + 12, as: UInt32.self))
    var p = o + 16
    switch op {
    case 1: p += 8
    case 2: p += 2 + Int(data.loadUnaligned(fromByteOffset: p, as: UInt16.self))
    case 4: p += 1 + Int(data[p])
    default: break
    }
    return Record(
      hash: UInt64(littleEndian: h), op: op, state: data[o + 9], file: file,
      payload: (o + 16)..<p, id: p..<(p + idLength))
  }

  /// Folds the records in `data` (whole buckets, in bucket order) and appends one resolved
  /// entry per user to `out`, in hash order: hash (u64), length (u32), the entry.
  mutating func resolve(_ data: [UInt8], into out: SequentialWriter) throws(IndexBuildError) {
    var keys: [(UInt64, Int)] = []
    var failure: IndexBuildError?
    data.withUnsafeBytes { d in
      var o = 0
      while o < d.count {
        let r = IndexResolver.record(d, at: o)
        keys.append((r.hash, o))
        o = r.id.upperBound
      }
      // Offsets grow with the order rows were read in, so equal hashes keep that order.
      keys.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
      var k = 0
      var group: [Record] = []
      while k < keys.count && failure == nil {
        var end = k + 1
        while end < keys.count && keys[end].0 == keys[k].0 { end += 1 }
        group = (k..<end).map { IndexResolver.record(d, at: keys[$0].1) }
        // Equal hashes, almost always one id: split by id bytes, first seen first.
        while !group.isEmpty {
          let id = group[0].id
          let same = group.filter { d[$0.id].elementsEqual(d[id]) }
          group.removeAll { d[$0.id].elementsEqual(d[id]) }
          do throws(IndexBuildError) {
            try fold(same, d, into: out)
          } catch {
            failure = error
            break
          }
        }
        k = end
      }
    }
    if let failure { throw failure }
  }

  private mutating func fold(
    _ records: [Record], _ d: UnsafeRawBufferPointer, into out: SequentialWriter
  ) throws(IndexBuildError) {
    users += 1
    var files: [Int] = []
    var decided: (time: Timestamp, state: UInt8, word: UInt64?, exact: Substring?)?
    var ledgerError = false
    var codes: [[UInt8]] = []
    for r in records {
      if !files.contains(r.file) {
        files.append(r.file)
        fileUsers[r.file - 1] += 1
      }
      switch r.op {
      case 1, 2:
        var time: Timestamp
        var word: UInt64?
        var exact: Substring?
        if r.op == 1 {
          let w = UInt64(
            littleEndian: d.loadUnaligned(fromByteOffset: r.payload.lowerBound, as: UInt64.self))
          time = PackedTime.unpack(w)
          word = w
        } else {
          let line = Substring(
            String(decoding: d[(r.payload.lowerBound + 2)..<r.payload.upperBound], as: UTF8.self))
          guard let t = IndexFile.parseExactLine(line) else {
            throw IndexBuildError(message: "a run holds an unreadable time")
          }
          time = t
          exact = line
        }
        // The latest event decides; at equal times the more restrictive (higher) state.
        if let current = decided,
          time < current.time || (time == current.time && r.state <= current.state)
        {
          continue
        }
        decided = (time, r.state, word, exact)
      case 3: ledgerError = true
      case 4:
        let code = Array(d[(r.payload.lowerBound + 1)..<r.payload.upperBound])
        if !codes.contains(code) { codes.append(code) }
      default: break
      }
    }
    guard decided != nil || ledgerError || !codes.isEmpty else { return }
    entries += 1
    entry.removeAll(keepingCapacity: true)
    func append<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { entry.append(contentsOf: $0) }
    }
    var timeWord: UInt64 = 0
    if let decided {
      if let w = decided.word {
        timeWord = w
      } else {
        timeWord = PackedTime.exactBit | UInt64(exactTimes)
        exactTimes += 1
        exactTimeLines += decided.exact! + "\n"
      }
    }
    append(timeWord)
    let id = UnsafeRawBufferPointer(rebasing: d[records[0].id])
    let numeric = IndexFile.numericValue(id)
    var flags = decided?.state ?? 0
    if decided != nil { flags |= IndexFile.decidedBit }
    if ledgerError { flags |= IndexFile.ledgerErrorBit }
    if numeric != nil { flags |= IndexFile.numericIdBit }
    var set = 0
    if !codes.isEmpty {
      let key = Array(codes.sorted { $0.lexicographicallyPrecedes($1) }.joined(separator: [0x2C]))
      if let known = tagSets[key] {
        set = known
      } else {
        set = tagSets.count + 1
        guard set < 1 << 24 else {
          throw IndexBuildError(message: "more than 16,777,215 distinct sets of tags")
        }
        tagSets[key] = set
        tagSetLines += String(decoding: key, as: UTF8.self) + "\n"
      }
    }
    append(UInt32(flags) | UInt32(set) << 8)
    if let numeric {
      append(numeric)
    } else if id.count < 255 {
      append(UInt8(id.count))
      entry.append(contentsOf: id)
    } else {
      append(UInt8(255))
      append(UInt32(id.count))
      entry.append(contentsOf: id)
    }
    entryBytes += entry.count
    try out.write(records[0].hash)
    try out.write(UInt32(entry.count))
    try out.write(entry)
  }
}
