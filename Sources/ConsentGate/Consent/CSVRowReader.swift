#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reads RFC 4180 CSV rows from a decoded stream, one row at a time, without copying.
///
/// Rows end at LF or CRLF outside quotes; quoted fields may hold commas, quotes (`""`) and
/// line breaks. A quote inside an unquoted field, text after a closing quote, or a quote left
/// open at the end of the file is a format error: a ledger is evidence, so nothing is guessed.
///
/// Ledgers run to hundreds of millions of rows, nearly all without a quote, so a row is found
/// with `memchr` for its line end and split on commas in place; only a row holding a quote
/// goes through the byte-by-byte state machine, into a copy.
final class CSVRowReader {
  enum Failure: Error {
    case malformed(line: Int, detail: String)
    case input(InputError)
  }

  private let reader: DecodingReader
  private var buffer: UnsafeMutableRawPointer
  private var capacity = 1 << 18
  /// Unread bytes are `buffer[position..<end]`.
  private var position = 0
  private var end = 0
  private var eof = false
  private var physicalLine = 1
  private var checkedBOM = false
  /// The current row's bytes, valid until the next call of ``next()``; `fields` are ranges
  /// into it.
  private(set) var row = UnsafeRawBufferPointer(start: nil, count: 0)
  private(set) var fields: [Range<Int>] = []
  /// Line on which the current row starts.
  private(set) var line = 0

  init(reader: DecodingReader) {
    self.reader = reader
    buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    fields.reserveCapacity(16)
  }

  deinit {
    buffer.deallocate()
  }

  /// Reads more input after `end`, first moving the unread bytes to the front (and growing
  /// the buffer when they fill it). False at end of input.
  private func refill() throws(Failure) -> Bool {
    if eof { return false }
    if position > 0 {
      buffer.copyMemory(from: buffer + position, byteCount: end - position)
      end -= position
      position = 0
    }
    if end == capacity {
      let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
      bigger.copyMemory(from: buffer, byteCount: end)
      buffer.deallocate()
      buffer = bigger
      capacity *= 2
    }
    let n: Int
    do {
      n = try reader.read(
        into: UnsafeMutableRawBufferPointer(start: buffer + end, count: capacity - end))
    } catch let error {
      throw .input(error)
    }
    if n == 0 {
      eof = true
      return false
    }
    end += n
    return true
  }

  /// Reads the next non-blank row; false at end of file.
  func next() throws(Failure) -> Bool {
    if !checkedBOM {
      checkedBOM = true
      while end - position < 3, try refill() {}
      if end - position >= 3, buffer.load(fromByteOffset: position, as: UInt8.self) == 0xEF,
        buffer.load(fromByteOffset: position + 1, as: UInt8.self) == 0xBB,
        buffer.load(fromByteOffset: position + 2, as: UInt8.self) == 0xBF
      {
        position += 3
      }
    }
    while true {
      fields.removeAll(keepingCapacity: true)
      line = physicalLine
      // Find the line end, reading more until there is one or the input ends.
      var searched = position
      var lineEnd: Int?
      while true {
        if let p = memchr(buffer + searched, 0x0A, end - searched) {
          lineEnd = buffer.distance(to: p)
          break
        }
        searched = end - position
        guard try refill() else { break }
        searched += position
      }
      if position == end { return false }
      let stop = lineEnd ?? end
      var content = stop
      if lineEnd != nil && content > position
        && buffer.load(fromByteOffset: content - 1, as: UInt8.self) == 0x0D
      {
        content -= 1
      }
      let length = content - position
      if memchr(buffer + position, Int32(UInt8(ascii: "\"")), length) != nil {
        try readQuotedRow()
      } else {
        row = UnsafeRawBufferPointer(start: buffer + position, count: length)
        var start = 0
        var blank = true
        for k in 0..<length {
          let c = row[k]
          if c == UInt8(ascii: ",") {
            fields.append(start..<k)
            start = k + 1
            blank = false
          } else if c != 0x20 && c != 0x09 && c != 0x0D {
            blank = false
          }
        }
        fields.append(start..<length)
        position = lineEnd.map { $0 + 1 } ?? end
        physicalLine += 1
        if blank { continue }
      }
      return true
    }
  }

  /// Field `column` of the row after the current one, when that row is already buffered and
  /// has no quote; nil otherwise. Lets the loader request the next user's index slot from
  /// memory while it handles the current row.
  func peekField(_ column: Int) -> UnsafeRawBufferPointer? {
    var k = position
    var field = 0
    var start = position
    while k < end {
      let c = buffer.load(fromByteOffset: k, as: UInt8.self)
      if c == UInt8(ascii: ",") || c == 0x0A || c == 0x0D {
        if field == column {
          return UnsafeRawBufferPointer(start: buffer + start, count: k - start)
        }
        if c != UInt8(ascii: ",") { return nil }
        field += 1
        start = k + 1
      } else if c == UInt8(ascii: "\"") {
        return nil
      }
      k += 1
    }
    return nil
  }

  /// The byte at `i`, reading more input when needed; nil at end of input. Callers keep
  /// `position` at 0 so indices stay valid across refills.
  private func byte(_ i: Int) throws(Failure) -> UInt8? {
    while i >= end {
      guard try refill() else { return nil }
    }
    return buffer.load(fromByteOffset: i, as: UInt8.self)
  }

  /// A row with a quote somewhere: the RFC 4180 state machine, byte by byte (a quoted field
  /// may run over several lines). The unquoted bytes are written back over the row itself:
  /// they are never more than the bytes read.
  private func readQuotedRow() throws(Failure) {
    // Move the row to the front so refills never shift it.
    if position > 0 {
      buffer.copyMemory(from: buffer + position, byteCount: end - position)
      end -= position
      position = 0
    }
    var w = 0
    func put(_ c: UInt8) {
      buffer.storeBytes(of: c, toByteOffset: w, as: UInt8.self)
      w += 1
    }
    var i = 0
    var fieldStart = 0
    var inQuotes = false
    var afterQuote = false
    var atFieldStart = true
    rowLoop: while true {
      guard let c = try byte(i) else {
        if inQuotes { throw .malformed(line: line, detail: "a quoted field is not closed") }
        fields.append(fieldStart..<w)
        break rowLoop
      }
      i += 1
      if inQuotes {
        if c == UInt8(ascii: "\"") {
          if try byte(i) == UInt8(ascii: "\"") {
            i += 1
            put(c)
          } else {
            inQuotes = false
            afterQuote = true
          }
        } else {
          if c == 0x0A { physicalLine += 1 }
          put(c)
        }
        continue
      }
      switch c {
      case UInt8(ascii: ","):
        fields.append(fieldStart..<w)
        fieldStart = w
        afterQuote = false
        atFieldStart = true
      case 0x0A:
        physicalLine += 1
        fields.append(fieldStart..<w)
        break rowLoop
      case 0x0D where try byte(i) == 0x0A:
        i += 1
        physicalLine += 1
        fields.append(fieldStart..<w)
        break rowLoop
      case UInt8(ascii: "\""):
        guard atFieldStart else {
          throw .malformed(line: line, detail: "a quote inside an unquoted field")
        }
        inQuotes = true
        atFieldStart = false
      default:
        if afterQuote {
          throw .malformed(line: line, detail: "text after a closing quote")
        }
        atFieldStart = false
        put(c)
      }
    }
    position = i
    row = UnsafeRawBufferPointer(start: buffer, count: w)
  }
}
