import Foundation
import Testing

@testable import ConsentGate

/// Frames `bytes` and returns the blocks.
func frame(_ bytes: [UInt8], blockTarget: Int = 1 << 20, maxRecordBytes: Int = 1 << 24)
  throws -> [RecordBlock]
{
  let dir = temporaryFolder("frame")
  let path = writeFile(dir + "/in.jsonl", bytes)
  let framer = BlockFramer(
    reader: try DecodingReader(source: try InputSource(path: path), chunkSize: 5),
    blockTarget: blockTarget, maxRecordBytes: maxRecordBytes)
  var blocks: [RecordBlock] = []
  while let b = try framer.next() { blocks.append(b) }
  return blocks
}

/// The lines the framer yields, with their numbers, as the processing stage splits them.
func framedLines(_ bytes: [UInt8], blockTarget: Int = 1 << 20) throws -> [(Int, String)] {
  var lines: [(Int, String)] = []
  for block in try frame(bytes, blockTarget: blockTarget) {
    var n = block.firstLine
    var parts = block.buffer.bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
    if block.buffer.bytes.last == 0x0A { parts.removeLast() }
    for p in parts {
      lines.append((n, String(decoding: p, as: UTF8.self)))
      n += 1
    }
    #expect(n - block.firstLine == block.lineCount)
  }
  return lines
}

@Suite struct FramingTests {
  @Test func bomIsStrippedBeforeFraming() throws {
    let lines = try framedLines([0xEF, 0xBB, 0xBF] + Array("{}\n{}\n".utf8))
    #expect(lines.map(\.1) == ["{}", "{}"])
  }

  @Test func bomOnlyInputHasNoLines() throws {
    #expect(try frame([0xEF, 0xBB, 0xBF]).isEmpty)
  }

  @Test func bomThenLFStartsWithBlankLine() throws {
    let lines = try framedLines([0xEF, 0xBB, 0xBF, 0x0A] + Array("{}".utf8))
    #expect(lines.map(\.0) == [1, 2])
    #expect(lines.map(\.1) == ["", "{}"])
  }

  @Test func finalLineWithoutLFIsALine() throws {
    #expect(try framedLines(Array("a\nb".utf8)).map(\.1) == ["a", "b"])
  }

  @Test func emptySegmentAfterFinalLFIsNotALine() throws {
    #expect(try framedLines(Array("a\n".utf8)).count == 1)
  }

  @Test func lineNumbersCountBlankLinesAcrossBlocks() throws {
    var text = ""
    for i in 1...500 { text += i % 7 == 0 ? "\n" : "{\"n\":\(i)}\n" }
    let lines = try framedLines(Array(text.utf8), blockTarget: 64)
    #expect(lines.count == 500)
    #expect(lines.map(\.0) == Array(1...500))
    #expect(lines[9].1 == "{\"n\":10}")
  }

  @Test func blockBoundariesDependOnlyOnInputBytes() throws {
    var text = ""
    for i in 1...3000 {
      text += "{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: i % 97))\"}\n"
    }
    let bytes = Array(text.utf8)
    let a = try frame(bytes, blockTarget: 4096).map { ($0.firstLine, $0.buffer.bytes.count) }
    // Different read sizes through gzip vs plain: the same boundaries.
    let dir = temporaryFolder()
    let path = writeFile(dir + "/in.gz", gzipMember(bytes))
    let framer = BlockFramer(
      reader: try DecodingReader(source: try InputSource(path: path), chunkSize: 1000),
      blockTarget: 4096, maxRecordBytes: 1 << 24)
    var b: [(Int, Int)] = []
    while let block = try framer.next() { b.append((block.firstLine, block.buffer.bytes.count)) }
    #expect(a.map(\.0) == b.map(\.0))
    #expect(a.map(\.1) == b.map(\.1))
    #expect(a.count > 10)
  }

  /// Buffers are recycled, as the pipeline does: the one a long line made large must not
  /// stay large for the rest of the input (memory would then grow with every such line).
  @Test func recycledBuffersShrinkAfterALongLine() throws {
    var bytes = Array("{}\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 3 << 20) + [0x0A]
    for i in 0..<6000 { bytes += Array("{\"n\":\(i)}\n".utf8) }
    let dir = temporaryFolder()
    let path = writeFile(dir + "/in.jsonl", bytes)
    let framer = BlockFramer(
      reader: try DecodingReader(source: try InputSource(path: path)), blockTarget: 4096,
      maxRecordBytes: 1 << 24)
    var recycled: [BlockBuffer] = []
    framer.takeBuffer = { recycled.popLast() ?? BlockBuffer() }
    var capacities: [Int] = []
    var total = 0
    while let block = try framer.next() {
      capacities.append(block.buffer.capacity)
      total += block.buffer.count
      recycled.append(block.buffer)
    }
    #expect(total == bytes.count)
    #expect(capacities.max()! >= 3 << 20)
    #expect(capacities.count > 10)
    #expect(capacities.suffix(5).allSatisfy { $0 < 1 << 20 }, "\(capacities.suffix(5))")
  }

  /// A line longer than the framer's first buffer but within the limit makes the buffer
  /// grow; it must arrive whole (this once read through a stale pointer after growing).
  @Test(.timeLimit(.minutes(1)))
  func lineLongerThanTheBufferButWithinTheLimitArrivesWhole() throws {
    let long =
      Array("{\"a\":\"".utf8) + [UInt8](repeating: 0x61, count: 3_000_000) + Array("\"}".utf8)
    let bytes = Array("{}\n".utf8) + long + Array("\n{}\n".utf8)
    let blocks = try frame(bytes, blockTarget: 64, maxRecordBytes: 16 << 20)
    let lines = blocks.flatMap { $0.buffer.bytes.split(separator: 0x0A).map(Array.init) }
    #expect(lines.count == 3)
    #expect(lines[1] == long)
    #expect(blocks.allSatisfy { $0.oversized == nil })
  }

  @Test func overlongLineStreamsWithDigestAndPrefix() throws {
    // Longer than the framer's buffer, so it cannot be held whole.
    let long = [UInt8](repeating: UInt8(ascii: "a"), count: 3_000_000)
    let bytes = Array("{}\n".utf8) + long + Array("\r\n{}\n".utf8)
    let blocks = try frame(bytes, blockTarget: 1024, maxRecordBytes: 1000)
    let big = try #require(blocks.first { $0.oversized != nil })
    #expect(big.firstLine == 2)
    #expect(big.oversized!.length == 3_000_000)
    #expect(big.oversized!.prefix.count == OversizedLine.prefixLimit)
    #expect(big.oversized!.sha256Hex == sha256Hex(long))
    #expect(!big.oversized!.isBlank)
    let after = try #require(blocks.last)
    #expect(after.firstLine == 3)
  }

  @Test func overlongLineAtEndWithoutLFKeepsItsCR() throws {
    let long = [UInt8](repeating: UInt8(ascii: "b"), count: 3_000_000) + [0x0D]
    let blocks = try frame(long, blockTarget: 64, maxRecordBytes: 100)
    #expect(blocks.count == 1)
    #expect(blocks[0].oversized!.length == 3_000_001)
    #expect(blocks[0].oversized!.sha256Hex == sha256Hex(long))
  }

  @Test func overlongBlankLineIsBlank() throws {
    let blank = [UInt8](repeating: 0x20, count: 3_000_000) + [0x09, 0x0A]
    let blocks = try frame(blank, blockTarget: 64, maxRecordBytes: 100)
    #expect(blocks.count == 1)
    #expect(blocks[0].oversized!.isBlank)
  }
}
