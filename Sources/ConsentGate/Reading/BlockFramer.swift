import CScanKernels
import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A run of complete physical lines: the unit of parallel work.
///
/// `buffer` holds whole lines, each with its LF, except that the input's last line may lack
/// one. A line too long to hold is never buffered: it arrives alone, as ``oversized``, with
/// `buffer` empty.
public struct RecordBlock: Sendable {
  /// Position of the block in its input, from 0.
  public var sequence: Int
  /// Line number (1-based, blank lines counted) of the first line in the block.
  public var firstLine: Int
  /// Physical lines in the block.
  public var lineCount: Int
  public var buffer: BlockBuffer
  public var oversized: OversizedLine?

  public init(
    sequence: Int, firstLine: Int, lineCount: Int, buffer: BlockBuffer, oversized: OversizedLine?
  ) {
    self.sequence = sequence
    self.firstLine = firstLine
    self.lineCount = lineCount
    self.buffer = buffer
    self.oversized = oversized
  }

  /// A block holding a copy of `bytes` (tests and benchmarks).
  public init(
    sequence: Int, firstLine: Int, lineCount: Int, bytes: [UInt8], oversized: OversizedLine?
  ) {
    self.init(
      sequence: sequence, firstLine: firstLine, lineCount: lineCount,
      buffer: BlockBuffer(copying: bytes), oversized: oversized)
  }
}

/// The bytes of one block: a single allocation that the reading thread decodes into in place
/// and a worker then reads, recycled by the pipeline, so a block's bytes are never copied.
///
/// A class so that it can be handed between threads and recycled without copy-on-write
/// checks. `@unchecked Sendable`: one thread uses it at a time; the pipeline's queues, which
/// hand it over under a lock, order the accesses.
public final class BlockBuffer: @unchecked Sendable {
  public private(set) var base: UnsafeMutableRawPointer?
  public private(set) var capacity = 0
  /// Bytes in use, from `base`.
  public internal(set) var count = 0

  public init(capacity: Int = 0) {
    if capacity > 0 { reserve(capacity) }
  }

  public convenience init(copying bytes: [UInt8]) {
    self.init(capacity: bytes.count)
    bytes.withUnsafeBytes { append($0) }
  }

  deinit {
    free(base)
  }

  /// A copy of the bytes in use (tests, diagnostics).
  public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

  public func withUnsafeBytes<R, E: Error>(
    _ body: (UnsafeRawBufferPointer) throws(E) -> R
  ) throws(E) -> R {
    try body(UnsafeRawBufferPointer(start: base, count: count))
  }

  /// Room for at least `total` bytes, keeping those in use.
  func reserve(_ total: Int) {
    guard total > capacity else { return }
    let size = max(total, capacity * 2)
    guard let grown = realloc(base, size) else {
      fatalError("out of memory for a \(size)-byte block")
    }
    base = grown
    capacity = size
  }

  /// The free space after the bytes in use.
  var spare: UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(start: base.map { $0 + count }, count: capacity - count)
  }

  func append(_ bytes: UnsafeRawBufferPointer) {
    guard !bytes.isEmpty else { return }
    reserve(count + bytes.count)
    (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    count += bytes.count
  }

  /// Empties the buffer for reuse. One that a long line made much larger than `capacity` is
  /// given back to the allocator first, so that recycled buffers stay block-sized.
  func reset(capacity wanted: Int) {
    count = 0
    if capacity > 4 * wanted {
      free(base)
      base = nil
      capacity = 0
    }
    reserve(wanted)
  }

  /// Drops the first `n` bytes in use.
  func removeFirst(_ n: Int) {
    if n < count { memmove(base!, base! + n, count - n) }
    count -= n
  }
}

/// What is kept of a line longer than the record limit: its length, digest and first bytes.
public struct OversizedLine: Sendable {
  /// Length without the line terminator.
  public var length: Int
  public var sha256Hex: String
  /// The first ``OversizedLine/prefixLimit`` bytes.
  public var prefix: [UInt8]
  /// True when every byte is a space, tab or CR: then it is a blank line, not a record.
  public var isBlank: Bool

  public static let prefixLimit = 4096
}

/// Splits decoded input into ``RecordBlock``s.
///
/// Framing follows SPEC §2.1 and §7: a BOM at the very start is dropped; lines end at LF; the
/// segment after a final LF is not a line. A block ends at the first line end at or beyond
/// `blockTarget` bytes, so block boundaries depend only on the input bytes and the record
/// limit, never on read sizes or timing.
///
///     current: | line | line | line ... line |  partial line  |
///              ^0                           ^lineStart        ^count
///                                                    ^scanPos: where the LF search resumes
///
/// The input is decoded straight into the buffer that becomes the next block, so a block is
/// never copied: only the few bytes read past its last line end move to the next buffer, and
/// reads are sized to end just past `blockTarget` to keep those few. The LF search resumes at
/// `scanPos`, so no byte is scanned twice. A line that grows past `maxRecordBytes + 1` (one
/// CR may still turn out to be its terminator) is streamed through a running SHA-256 instead
/// of being buffered, so memory stays bounded whatever the input.
public final class BlockFramer {
  public let reader: DecodingReader
  public let blockTarget: Int
  public let maxRecordBytes: Int

  private var current: BlockBuffer?
  private var scanPos = 0
  private var lineStart = 0
  private var linesSeen = 0
  private var sawEOF = false
  private var nextLine = 1
  private var nextSequence = 0
  private let readSize = 1 << 20
  /// How far a read may go past `blockTarget`: what lies beyond the block's last line end is
  /// copied into the next block, so this stays small (a record or two of typical size).
  private let overshoot = 1 << 14
  /// Where block buffers come from; a pipeline hands back recycled ones.
  public var takeBuffer: () -> BlockBuffer = { BlockBuffer() }

  public init(reader: DecodingReader, blockTarget: Int = 1 << 20, maxRecordBytes: Int) {
    self.reader = reader
    self.blockTarget = max(1, blockTarget)
    self.maxRecordBytes = maxRecordBytes
  }

  /// Opens `path` (`-` is stdin) and frames it.
  public convenience init(path: String, blockTarget: Int, maxRecordBytes: Int)
    throws(InputError)
  {
    self.init(
      reader: try DecodingReader(path: path), blockTarget: blockTarget,
      maxRecordBytes: maxRecordBytes)
  }

  /// Physical lines framed so far.
  public var linesFramed: Int { nextLine - 1 }

  /// A fresh or recycled buffer with room for a block.
  private func emptyBuffer() -> BlockBuffer {
    let buffer = takeBuffer()
    buffer.reset(capacity: min(blockTarget, 1 << 24) + 2 * overshoot)
    return buffer
  }

  /// The next block, or nil at the end of the input.
  public func next() throws(InputError) -> RecordBlock? {
    let current: BlockBuffer
    if let buffer = self.current {
      current = buffer
    } else {
      current = emptyBuffer()
      self.current = current
      while current.count < 3 && !sawEOF { try fill(current) }
      if current.count >= 3 {
        let base = current.base!
        if base.load(as: UInt8.self) == 0xEF && base.load(fromByteOffset: 1, as: UInt8.self) == 0xBB
          && base.load(fromByteOffset: 2, as: UInt8.self) == 0xBF
        {
          current.removeFirst(3)
        }
      }
    }
    while true {
      // Lines that end before the block target are only counted; the first LF at or past
      // `blockTarget - 1` closes the block.
      let countEnd = min(current.count, max(scanPos, blockTarget - 1))
      if countEnd > scanPos {
        var last = 0
        let lines = cg_count_lf(
          current.base!.assumingMemoryBound(to: UInt8.self) + scanPos, countEnd - scanPos, &last)
        if lines > 0 {
          linesSeen += lines
          lineStart = scanPos + last + 1
        }
        scanPos = countEnd
      }
      if scanPos < current.count, let lf = findLF(current, from: scanPos) {
        linesSeen += 1
        lineStart = lf + 1
        scanPos = lf + 1
        return emit(upTo: lineStart, finalLine: false)
      }
      scanPos = current.count
      if current.count - lineStart > maxRecordBytes + 1 {
        if lineStart > 0 { return emit(upTo: lineStart, finalLine: false) }
        return try streamOversized(current)
      }
      if sawEOF {
        if current.count == 0 { return nil }
        return emit(upTo: current.count, finalLine: lineStart < current.count)
      }
      try fill(current)
    }
  }

  private func findLF(_ buffer: BlockBuffer, from start: Int) -> Int? {
    let base = buffer.base!
    guard let hit = memchr(base + start, 0x0A, buffer.count - start) else { return nil }
    return base.distance(to: UnsafeMutableRawPointer(hit))
  }

  /// Decodes more input onto the end of `buffer`.
  private func fill(_ buffer: BlockBuffer) throws(InputError) {
    let count = buffer.count
    // Up to just past the block target while a block fills; past it, the line that closes
    // the block is usually short, but a long one doubles the read each time.
    let want =
      count < blockTarget
      ? min(readSize, blockTarget - count + overshoot)
      : min(readSize, max(overshoot, count - lineStart))
    buffer.reserve(count + want)
    let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.spare[0..<want]))
    buffer.count += n
    if n == 0 { sawEOF = true }
  }

  private func emit(upTo end: Int, finalLine: Bool) -> RecordBlock {
    let full = current!
    let next = emptyBuffer()
    if end < full.count {
      next.append(UnsafeRawBufferPointer(start: full.base! + end, count: full.count - end))
      full.count = end
    }
    current = next
    let lines = linesSeen + (finalLine ? 1 : 0)
    let block = RecordBlock(
      sequence: nextSequence, firstLine: nextLine, lineCount: lines, buffer: full, oversized: nil)
    nextSequence += 1
    nextLine += lines
    linesSeen = 0
    scanPos -= end
    lineStart -= end
    return block
  }

  /// Streams one line longer than the limit; `lineStart` is 0 here.
  private func streamOversized(_ buffer: BlockBuffer) throws(InputError) -> RecordBlock {
    var line = OversizedAccumulator()
    while true {
      if buffer.count > 0, let lf = findLF(buffer, from: 0) {
        line.feed(UnsafeRawBufferPointer(start: buffer.base!, count: lf))
        buffer.removeFirst(lf + 1)
        break
      }
      buffer.withUnsafeBytes { line.feed($0) }
      buffer.count = 0
      if sawEOF {
        line.finishWithoutLF()
        break
      }
      try fill(buffer)
    }
    let block = RecordBlock(
      sequence: nextSequence, firstLine: nextLine, lineCount: 1, buffer: BlockBuffer(),
      oversized: line.result())
    nextSequence += 1
    nextLine += 1
    scanPos = 0
    lineStart = 0
    return block
  }
}

/// Length, digest, prefix and blankness of a streamed line. One CR is held back until it is
/// known whether an LF follows (then it is the terminator, not content).
struct OversizedAccumulator {
  private var hasher = SHA256()
  private var length = 0
  private var prefix: [UInt8] = []
  private var blank = true
  private var heldCR = false

  mutating func feed(_ bytes: UnsafeRawBufferPointer) {
    guard !bytes.isEmpty else { return }
    if heldCR {
      heldCR = false
      withUnsafeBytes(of: UInt8(0x0D)) { take($0) }
    }
    if bytes[bytes.count - 1] == 0x0D {
      take(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 1)]))
      heldCR = true
    } else {
      take(bytes)
    }
  }

  /// The line ended at end of input: a held CR is content.
  mutating func finishWithoutLF() {
    if heldCR {
      heldCR = false
      withUnsafeBytes(of: UInt8(0x0D)) { take($0) }
    }
  }

  private mutating func take(_ bytes: UnsafeRawBufferPointer) {
    guard !bytes.isEmpty else { return }
    hasher.update(bufferPointer: bytes)
    length += bytes.count
    if prefix.count < OversizedLine.prefixLimit {
      prefix.append(contentsOf: bytes.prefix(OversizedLine.prefixLimit - prefix.count))
    }
    if blank {
      for b in bytes where b != 0x20 && b != 0x09 && b != 0x0D {
        blank = false
        break
      }
    }
  }

  func result() -> OversizedLine {
    OversizedLine(
      length: length, sha256Hex: hexString(hasher.finalize()), prefix: prefix, isBlank: blank)
  }
}
