import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A run of complete physical lines: the unit of parallel work.
///
/// `bytes` holds whole lines, each with its LF, except that the input's last line may lack
/// one. A line too long to hold is never buffered: it arrives alone, as ``oversized``, with
/// `bytes` empty.
public struct RecordBlock: Sendable {
  /// Position of the block in its input, from 0.
  public var sequence: Int
  /// Line number (1-based, blank lines counted) of the first line in the block.
  public var firstLine: Int
  /// Physical lines in the block.
  public var lineCount: Int
  public var bytes: [UInt8]
  public var oversized: OversizedLine?

  public init(
    sequence: Int, firstLine: Int, lineCount: Int, bytes: [UInt8], oversized: OversizedLine?
  ) {
    self.sequence = sequence
    self.firstLine = firstLine
    self.lineCount = lineCount
    self.bytes = bytes
    self.oversized = oversized
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
///     buffer:  | line | line | line ... line |  partial line  |        |
///              ^0                           ^lineStart        ^count   ^capacity
///                                                    ^scanPos: where the LF search resumes
///
/// The LF search resumes at `scanPos`, so no byte is scanned twice. A line that grows past
/// `maxRecordBytes + 1` (one CR may still turn out to be its terminator) is streamed through
/// a running SHA-256 instead of being buffered, so memory stays bounded whatever the input.
public final class BlockFramer {
  public let reader: DecodingReader
  public let blockTarget: Int
  public let maxRecordBytes: Int

  private var buffer: UnsafeMutableRawBufferPointer
  private var count = 0
  private var scanPos = 0
  private var lineStart = 0
  private var linesSeen = 0
  private var sawEOF = false
  private var checkedBOM = false
  private var nextLine = 1
  private var nextSequence = 0
  private let readSize = 1 << 18
  /// Where block byte arrays come from; a pipeline hands back recycled ones.
  public var takeBuffer: () -> [UInt8] = { [] }

  public init(reader: DecodingReader, blockTarget: Int = 1 << 20, maxRecordBytes: Int) {
    self.reader = reader
    self.blockTarget = max(1, blockTarget)
    self.maxRecordBytes = maxRecordBytes
    buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: self.blockTarget + 2 * readSize, alignment: 64)
  }

  deinit {
    buffer.deallocate()
  }

  /// Physical lines framed so far.
  public var linesFramed: Int { nextLine - 1 }

  /// The next block, or nil at the end of the input.
  public func next() throws(InputError) -> RecordBlock? {
    if !checkedBOM {
      while count < 3 && !sawEOF { try fill() }
      if count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF {
        consume(3)
      }
      checkedBOM = true
    }
    while true {
      // Re-read on every pass: fill() may move the buffer when a long line makes it grow.
      let base = buffer.baseAddress!
      if scanPos < count, let hit = memchr(base + scanPos, 0x0A, count - scanPos) {
        let lf = base.distance(to: UnsafeMutableRawPointer(hit))
        linesSeen += 1
        lineStart = lf + 1
        scanPos = lf + 1
        if lineStart >= blockTarget { return emit(upTo: lineStart, finalLine: false) }
        continue
      }
      scanPos = count
      if count - lineStart > maxRecordBytes + 1 {
        if lineStart > 0 { return emit(upTo: lineStart, finalLine: false) }
        return try streamOversized()
      }
      if sawEOF {
        if count == 0 { return nil }
        return emit(upTo: count, finalLine: lineStart < count)
      }
      try fill()
    }
  }

  private func fill() throws(InputError) {
    if buffer.count - count < readSize {
      let bigger = UnsafeMutableRawBufferPointer.allocate(
        byteCount: buffer.count * 2, alignment: 64)
      bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: count)
      buffer.deallocate()
      buffer = bigger
    }
    let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
    if n == 0 { sawEOF = true }
    count += n
  }

  private func consume(_ n: Int) {
    let base = buffer.baseAddress!
    if n < count { memmove(base, base + n, count - n) }
    count -= n
    scanPos = max(0, scanPos - n)
    lineStart = max(0, lineStart - n)
  }

  private func emit(upTo end: Int, finalLine: Bool) -> RecordBlock {
    let lines = linesSeen + (finalLine ? 1 : 0)
    var bytes = takeBuffer()
    bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<end]))
    let block = RecordBlock(
      sequence: nextSequence, firstLine: nextLine, lineCount: lines, bytes: bytes, oversized: nil)
    nextSequence += 1
    nextLine += lines
    linesSeen = 0
    consume(end)
    return block
  }

  /// Streams one line longer than the limit; `lineStart` is 0 here.
  private func streamOversized() throws(InputError) -> RecordBlock {
    var line = OversizedAccumulator()
    while true {
      let base = buffer.baseAddress!
      if count > 0, let hit = memchr(base, 0x0A, count) {
        let lf = base.distance(to: UnsafeMutableRawPointer(hit))
        line.feed(UnsafeRawBufferPointer(start: base, count: lf))
        consume(lf + 1)
        break
      }
      line.feed(UnsafeRawBufferPointer(start: base, count: count))
      consume(count)
      if sawEOF {
        line.finishWithoutLF()
        break
      }
      try fill()
    }
    let block = RecordBlock(
      sequence: nextSequence, firstLine: nextLine, lineCount: 1, bytes: [],
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
