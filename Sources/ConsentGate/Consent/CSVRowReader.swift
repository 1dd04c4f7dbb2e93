/// Reads RFC 4180 CSV rows from a decoded stream, one row at a time, into reused buffers.
///
/// Rows end at LF or CRLF outside quotes; quoted fields may hold commas, quotes (`""`) and
/// line breaks. A quote inside an unquoted field, text after a closing quote, or a quote left
/// open at the end of the file is a format error: a ledger is evidence, so nothing is guessed.
final class CSVRowReader {
  enum Failure: Error {
    case malformed(line: Int, detail: String)
    case input(InputError)
  }

  private let reader: DecodingReader
  private var chunk = [UInt8](repeating: 0, count: 1 << 18)
  private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
  private var chunkCount = 0
  private var chunkPos = 0
  private var eof = false
  private var physicalLine = 1
  private var checkedBOM = false

  /// The current row's field bytes, concatenated; `fields` are ranges into it.
  private(set) var bytes: [UInt8] = []
  private(set) var fields: [Range<Int>] = []
  /// Line on which the current row starts.
  private(set) var line = 0

  init(reader: DecodingReader) {
    self.reader = reader
  }

  deinit {
    readBuffer.deallocate()
  }

  private func nextByte() throws(Failure) -> UInt8? {
    if chunkPos == chunkCount {
      if eof { return nil }
      let n: Int
      do {
        n = try reader.read(into: readBuffer)
      } catch let error {
        throw .input(error)
      }
      chunk.replaceSubrange(0..<n, with: readBuffer[0..<n])
      chunkCount = n
      chunkPos = 0
      if n == 0 {
        eof = true
        return nil
      }
    }
    let b = chunk[chunkPos]
    chunkPos += 1
    return b
  }

  private func peekByte() throws(Failure) -> UInt8? {
    guard let b = try nextByte() else { return nil }
    chunkPos -= 1
    return b
  }

  /// Reads the next non-blank row; false at end of file.
  func next() throws(Failure) -> Bool {
    if !checkedBOM {
      checkedBOM = true
      if try peekByte() == 0xEF {
        var head: [UInt8] = []
        for _ in 0..<3 { if let b = try nextByte() { head.append(b) } }
        if head != [0xEF, 0xBB, 0xBF] {
          let rest = Array(chunk[chunkPos..<chunkCount])
          chunk = head + rest + [UInt8](repeating: 0, count: 1 << 18)
          chunkPos = 0
          chunkCount = head.count + rest.count
        }
      }
    }
    while true {
      bytes.removeAll(keepingCapacity: true)
      fields.removeAll(keepingCapacity: true)
      line = physicalLine
      guard try peekByte() != nil else { return false }
      var anyQuoted = false
      var fieldStart = 0
      var inQuotes = false
      var afterQuote = false
      var atFieldStart = true
      rowLoop: while true {
        guard let c = try nextByte() else {
          if inQuotes { throw .malformed(line: line, detail: "a quoted field is not closed") }
          fields.append(fieldStart..<bytes.count)
          break rowLoop
        }
        if inQuotes {
          if c == UInt8(ascii: "\"") {
            if try peekByte() == UInt8(ascii: "\"") {
              _ = try nextByte()
              bytes.append(c)
            } else {
              inQuotes = false
              afterQuote = true
            }
          } else {
            if c == 0x0A { physicalLine += 1 }
            bytes.append(c)
          }
          continue
        }
        switch c {
        case UInt8(ascii: ","):
          fields.append(fieldStart..<bytes.count)
          fieldStart = bytes.count
          afterQuote = false
          atFieldStart = true
        case 0x0A:
          physicalLine += 1
          fields.append(fieldStart..<bytes.count)
          break rowLoop
        case 0x0D where try peekByte() == 0x0A:
          _ = try nextByte()
          physicalLine += 1
          fields.append(fieldStart..<bytes.count)
          break rowLoop
        case UInt8(ascii: "\""):
          guard atFieldStart else {
            throw .malformed(line: line, detail: "a quote inside an unquoted field")
          }
          inQuotes = true
          anyQuoted = true
          atFieldStart = false
        default:
          if afterQuote {
            throw .malformed(line: line, detail: "text after a closing quote")
          }
          atFieldStart = false
          bytes.append(c)
        }
      }
      if !anyQuoted && fields.count == 1
        && bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D })
      {
        continue
      }
      return true
    }
  }
}
