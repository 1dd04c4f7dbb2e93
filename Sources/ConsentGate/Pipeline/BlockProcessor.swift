// Over 300 lines for now: the two-pass block loop and the quarantine envelope encoding.
// Issue 23 moves the envelope encoding to Output/; left whole until then.
import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The result of one block: its output bytes (compressed when the policy says so) and counts.
///
/// Uncompressed kept lines may instead be given by reference, as ``keptRuns`` of the block's
/// own ``source`` bytes: then `kept` is empty and the writer writes the runs in order.
public struct BlockOutcome: Sendable {
  public var sequence: Int
  public var counts = RecordCounts()
  public var kept: [UInt8] = []
  public var quarantine: [UInt8] = []
  /// Kept output as runs of `source`, when the processor writes kept lines by reference.
  public var keptRuns: [ByteRun] = []
  /// The block the runs point into; set exactly when `keptRuns` is in use.
  public var source: BlockBuffer?
  public var keptRecords = 0
  public var quarantineRecords = 0
  /// With lineage on: the canonical user id of each kept record, in order, each as a 4-byte
  /// little-endian length and the id's bytes.
  public var keptIds: [UInt8] = []

  public init(sequence: Int) {
    self.sequence = sequence
  }
}

/// Bytes `start..<end` of a block, followed by an LF that is not in the block when `addLF`
/// (the record's line ended in CRLF, or at the end of the input without one).
public struct ByteRun: Sendable, Equatable {
  public var start: Int
  public var end: Int
  public var addLF: Bool
}

/// Frames, decides and encodes the records of one block; one per thread.
///
/// Kept lines are the record's input bytes followed by LF. Quarantine lines are compact
/// objects, keys in the order `source`, `line`, `reason`, then the payload (SPEC §4).
public final class BlockProcessor {
  public let decider: RecordDecider
  private let compressor: (any BlockCompressor)?
  /// Collect kept records' user ids for `lineage/` (SPEC §11).
  private let lineage: Bool
  /// Uncompressed kept lines are handed on as runs of the block instead of being copied.
  private let keepsByReference: Bool
  // Scratch owned by the one thread that runs this processor, modified for every record:
  // no two accesses can overlap, so the runtime's exclusivity check (1-2 % of a run) is off.
  @exclusivity(unchecked) private var keptPlain: [UInt8] = []
  @exclusivity(unchecked) private var quarantinePlain: [UInt8] = []
  @exclusivity(unchecked) private var runScratch: [ByteRun] = []

  /// With `keptByReference`, uncompressed kept lines come out as ``BlockOutcome/keptRuns``
  /// of the block (the pipeline's writer writes them from there); otherwise as bytes.
  /// A processor over a table loaded from side files.
  public convenience init(policy: Policy, index: ConsentIndex, keptByReference: Bool = false) {
    self.init(policy: policy, index: .loaded(index), keptByReference: keptByReference)
  }

  public init(policy: Policy, index: UserLookup, keptByReference: Bool = false) {
    decider = RecordDecider(policy: policy, index: index)
    compressor = makeBlockCompressor(policy.compression, level: policy.level)
    lineage = policy.lineage
    keepsByReference = keptByReference && compressor == nil
    // Room for a block of typical records up front, so the per-line arrays do not grow by
    // doubling during the first blocks (a block of tiny records grows them once, for good).
    let typicalLines = 4096
    lines.reserveCapacity(typicalLines)
    examined.reserveCapacity(typicalLines)
    ids.reserveCapacity(typicalLines)
    runScratch.reserveCapacity(typicalLines)
    found = [Int?](repeating: nil, count: typicalLines)
  }

  /// Processes `block` from the input whose quarantine `"source"` is `sourceJSON` (already a
  /// quoted JSON string).
  public func process(_ block: RecordBlock, sourceJSON: [UInt8]) -> BlockOutcome {
    var outcome = BlockOutcome(sequence: block.sequence)
    process(block, sourceJSON: sourceJSON, into: &outcome)
    return outcome
  }

  /// Processes `block` into `outcome`, whose (empty) `kept` and `quarantine` arrays are
  /// filled: handing in recycled arrays lets the steady state allocate nothing.
  public func process(_ block: RecordBlock, sourceJSON: [UInt8], into outcome: inout BlockOutcome) {
    outcome.sequence = block.sequence
    outcome.counts = RecordCounts()
    outcome.keptRecords = 0
    outcome.quarantineRecords = 0
    outcome.keptRuns.removeAll(keepingCapacity: true)
    outcome.keptIds.removeAll(keepingCapacity: true)
    outcome.source = keepsByReference && block.oversized == nil ? block.buffer : nil
    keptPlain.removeAll(keepingCapacity: true)
    quarantinePlain.removeAll(keepingCapacity: true)
    outcome.counts.lines = block.lineCount
    if let big = block.oversized {
      if big.isBlank {
        outcome.counts.blankLines += 1
      } else {
        outcome.counts.count(Verdict(reason: .recordTooLarge))
        appendTooLarge(
          sourceJSON, block.firstLine, length: big.length, sha256: big.sha256Hex,
          prefix: big.prefix)
        outcome.quarantineRecords += 1
      }
    } else if keepsByReference {
      block.buffer.withUnsafeBytes { raw in
        processLines(raw, firstLine: block.firstLine, sourceJSON, &outcome)
      }
    } else {
      // The runs are only gathered here, so they go into the processor's own array: the
      // outcome's is neither used nor grown.
      swap(&outcome.keptRuns, &runScratch)
      block.buffer.withUnsafeBytes { raw in
        processLines(raw, firstLine: block.firstLine, sourceJSON, &outcome)
        gather(outcome.keptRuns, of: raw, into: &keptPlain)
      }
      outcome.keptRuns.removeAll(keepingCapacity: true)
      swap(&outcome.keptRuns, &runScratch)
    }
    if let compressor {
      if !keptPlain.isEmpty { compressor.compress(keptPlain, appendingTo: &outcome.kept) }
      if !quarantinePlain.isEmpty {
        compressor.compress(quarantinePlain, appendingTo: &outcome.quarantine)
      }
    } else {
      // Hand the filled buffers over and keep the empty ones: no copy.
      swap(&outcome.kept, &keptPlain)
      swap(&outcome.quarantine, &quarantinePlain)
    }
  }

  /// One line of the block between the two passes.
  private struct Line {
    var start: Int
    var end: Int
    /// Index into `examined`, or -1 for a blank line.
    var record: Int
  }

  // Per-block scratch of this processor's thread: unchecked as `keptPlain` above.
  @exclusivity(unchecked) private var lines: [Line] = []
  @exclusivity(unchecked) private var examined: [RecordDecider.Examined] = []
  @exclusivity(unchecked) private var ids: [UnsafeRawBufferPointer] = []
  @exclusivity(unchecked) private var found: [Int?] = []
  private let idScratch = IdScratch(capacity: 1 << 20)

  /// Two passes: the first frames and examines every line and collects the user ids; the
  /// index then looks them all up at once (``UserLookup/find(batch:into:)``, which
  /// overlaps their memory misses); the second decides and writes in line order.
  private func processLines(
    _ raw: UnsafeRawBufferPointer, firstLine: Int, _ sourceJSON: [UInt8],
    _ outcome: inout BlockOutcome
  ) {
    guard let base = raw.baseAddress else { return }
    let n = raw.count
    lines.removeAll(keepingCapacity: true)
    examined.removeAll(keepingCapacity: true)
    ids.removeAll(keepingCapacity: true)
    idScratch.reset(capacity: n)
    var start = 0
    while start < n {
      let end: Int
      var hasLF = false
      if let hit = memchr(base + start, 0x0A, n - start) {
        end = base.distance(to: UnsafeRawPointer(hit))
        hasLF = true
      } else {
        end = n
      }
      var contentEnd = end
      // Exactly one CR directly before the LF belongs to the terminator.
      if hasLF && contentEnd > start
        && base.load(fromByteOffset: contentEnd - 1, as: UInt8.self) == 0x0D
      {
        contentEnd -= 1
      }
      let record = UnsafeRawBufferPointer(start: base + start, count: contentEnd - start)
      if isBlank(record) {
        lines.append(Line(start: start, end: contentEnd, record: -1))
      } else {
        let e = decider.examine(record, ids: idScratch)
        if e.early == nil {
          // Authors and embedded people go into one batch: an author, then its people.
          ids.append(e.id)
          if e.embeddedCount > 0 { ids.append(contentsOf: decider.embeddedIds) }
        }
        lines.append(Line(start: start, end: contentEnd, record: examined.count))
        examined.append(e)
      }
      start = end + 1
    }

    if found.count < ids.count { found = [Int?](repeating: nil, count: ids.count) }
    let index = decider.index
    ids.withUnsafeBufferPointer { batch in
      found.withUnsafeMutableBufferPointer { index.find(batch: batch, into: $0) }
    }

    var lookedUp = 0
    var author = 0
    for (k, l) in lines.enumerated() {
      guard l.record >= 0 else {
        outcome.counts.blankLines += 1
        continue
      }
      let record = UnsafeRawBufferPointer(start: base + l.start, count: l.end - l.start)
      let e = examined[l.record]
      let verdict: Verdict
      if let early = e.early {
        verdict = early
      } else {
        let facts = found[lookedUp].map { index.facts($0) } ?? .unknown
        author = lookedUp
        lookedUp += 1 + e.embeddedCount
        let people = author + 1
        verdict = decider.conclude(e, record, facts: facts) {
          found[people + $0].map { index.facts($0) } ?? .unknown
        }
      }
      outcome.counts.count(verdict)
      switch verdict.disposition {
      case .keep:
        // Runs of adjacent kept lines, whatever becomes of them: the writer writes them
        // straight from the block, or ``gather(_:of:into:)`` copies them once, run by run.
        // The line's own LF follows the record unless it ended in CRLF or at the end.
        let ownLF = l.end < n && base.load(fromByteOffset: l.end, as: UInt8.self) == 0x0A
        let end = ownLF ? l.end + 1 : l.end
        if let last = outcome.keptRuns.last, !last.addLF, last.end == l.start {
          outcome.keptRuns[outcome.keptRuns.count - 1].end = end
          outcome.keptRuns[outcome.keptRuns.count - 1].addLF = !ownLF
        } else {
          outcome.keptRuns.append(ByteRun(start: l.start, end: end, addLF: !ownLF))
        }
        outcome.keptRecords += 1
        if lineage {
          // A kept record passed rows 1-5, so it has an id, its author's.
          let id = ids[author]
          withUnsafeBytes(of: UInt32(id.count).littleEndian) { outcome.keptIds += $0 }
          outcome.keptIds += id
        }
      case .drop:
        break
      case .quarantine:
        appendQuarantine(sourceJSON, firstLine + k, verdict.reason, record)
        outcome.quarantineRecords += 1
      }
    }
  }

  /// Appends the bytes of `runs` (each with its LF) to `out`: one copy per run, not per line.
  private func gather(
    _ runs: [ByteRun], of raw: UnsafeRawBufferPointer, into out: inout [UInt8]
  ) {
    guard let base = raw.baseAddress else { return }
    for run in runs {
      // A typed buffer, so that the append is one memcpy rather than a byte loop.
      out.append(
        contentsOf: UnsafeBufferPointer(
          start: (base + run.start).assumingMemoryBound(to: UInt8.self), count: run.end - run.start)
      )
      if run.addLF { out.append(0x0A) }
    }
  }

  @inline(__always)
  private func isBlank(_ record: UnsafeRawBufferPointer) -> Bool {
    for b in record where b != 0x20 && b != 0x09 && b != 0x0D { return false }
    return true
  }

  private func appendHeader(_ sourceJSON: [UInt8], _ line: Int, _ reason: Reason) {
    quarantinePlain.append(contentsOf: #"{"source":"#.utf8)
    quarantinePlain.append(contentsOf: sourceJSON)
    quarantinePlain.append(contentsOf: #","line":"#.utf8)
    quarantinePlain.append(contentsOf: String(line).utf8)
    quarantinePlain.append(contentsOf: #","reason":""#.utf8)
    quarantinePlain.append(contentsOf: reason.code.utf8)
    quarantinePlain.append(UInt8(ascii: "\""))
  }

  private func appendQuarantine(
    _ sourceJSON: [UInt8], _ line: Int, _ reason: Reason, _ record: UnsafeRawBufferPointer
  ) {
    if reason == .recordTooLarge {
      let digest = hexString(SHA256.hash(data: record))
      appendTooLarge(
        sourceJSON, line, length: record.count, sha256: digest,
        prefix: Array(record.prefix(OversizedLine.prefixLimit)))
      return
    }
    appendHeader(sourceJSON, line, reason)
    // The payload is the line without its surrounding spaces and tabs.
    var s = 0
    var e = record.count
    while s < e && (record[s] == 0x20 || record[s] == 0x09) { s += 1 }
    while e > s && (record[e - 1] == 0x20 || record[e - 1] == 0x09) { e -= 1 }
    let trimmed = UnsafeRawBufferPointer(rebasing: record[s..<e])
    switch reason {
    case .invalidUTF8:
      quarantinePlain.append(contentsOf: #","raw_base64":""#.utf8)
      Base64.append(trimmed, to: &quarantinePlain)
      quarantinePlain.append(UInt8(ascii: "\""))
    case .malformedJSON:
      quarantinePlain.append(contentsOf: #","raw":"#.utf8)
      JSONString.appendQuoted(trimmed, to: &quarantinePlain)
    default:
      quarantinePlain.append(contentsOf: #","record":"#.utf8)
      quarantinePlain.append(contentsOf: trimmed)
    }
    quarantinePlain.append(contentsOf: "}\n".utf8)
  }

  private func appendTooLarge(
    _ sourceJSON: [UInt8], _ line: Int, length: Int, sha256: String, prefix: [UInt8]
  ) {
    appendHeader(sourceJSON, line, .recordTooLarge)
    quarantinePlain.append(contentsOf: #","bytes":"#.utf8)
    quarantinePlain.append(contentsOf: String(length).utf8)
    quarantinePlain.append(contentsOf: #","sha256":""#.utf8)
    quarantinePlain.append(contentsOf: sha256.utf8)
    quarantinePlain.append(contentsOf: #"","raw_prefix":"#.utf8)
    // Invalid or cut UTF-8 sequences become U+FFFD.
    JSONString.appendQuoted(String(decoding: prefix, as: UTF8.self), to: &quarantinePlain)
    quarantinePlain.append(contentsOf: "}\n".utf8)
  }
}

/// Standard base64 with padding (RFC 4648 §4).
enum Base64 {
  private static let alphabet = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    var i = 0
    let n = bytes.count
    while i + 3 <= n {
      let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
      out.append(alphabet[Int(v >> 18)])
      out.append(alphabet[Int((v >> 12) & 63)])
      out.append(alphabet[Int((v >> 6) & 63)])
      out.append(alphabet[Int(v & 63)])
      i += 3
    }
    if n - i == 1 {
      let v = UInt32(bytes[i]) << 16
      out.append(alphabet[Int(v >> 18)])
      out.append(alphabet[Int((v >> 12) & 63)])
      out.append(contentsOf: "==".utf8)
    } else if n - i == 2 {
      let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
      out.append(alphabet[Int(v >> 18)])
      out.append(alphabet[Int((v >> 12) & 63)])
      out.append(alphabet[Int((v >> 6) & 63)])
      out.append(UInt8(ascii: "="))
    }
  }
}
