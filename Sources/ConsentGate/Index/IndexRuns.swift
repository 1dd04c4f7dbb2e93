#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file written front to back through a buffer, with a running CRC-32 of what went in.
final class SequentialWriter {
  let fd: Int32
  let path: String
  private(set) var offset: Int
  private var buffer: [UInt8] = []
  private let bufferBytes: Int
  private(set) var crc: UInt32 = 0
  /// Bytes written through this writer.
  private(set) var written = 0

  init(fd: Int32, path: String, at offset: Int = 0, bufferBytes: Int = 1 << 20) {
    self.fd = fd
    self.path = path
    self.offset = offset
    self.bufferBytes = bufferBytes
    buffer.reserveCapacity(bufferBytes)
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws(IndexBuildError) {
    crc = IndexFile.crc32(bytes, crc)
    written += bytes.count
    if buffer.count + bytes.count > bufferBytes { try flush() }
    if bytes.count >= bufferBytes {
      try put(bytes)
    } else {
      buffer.append(contentsOf: bytes)
    }
  }

  func write(_ bytes: [UInt8]) throws(IndexBuildError) {
    var failure: IndexBuildError?
    bytes.withUnsafeBytes { b in
      do throws(IndexBuildError) { try write(b) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  func write<T: FixedWidthInteger>(_ value: T) throws(IndexBuildError) {
    try write(withUnsafeBytes(of: value.littleEndian) { Array($0) })
  }

  func flush() throws(IndexBuildError) {
    guard !buffer.isEmpty else { return }
    var failure: IndexBuildError?
    buffer.withUnsafeBytes { b in
      do throws(IndexBuildError) { try put(b) } catch { failure = error }
    }
    if let failure { throw failure }
    buffer.removeAll(keepingCapacity: true)
  }

  private func put(_ bytes: UnsafeRawBufferPointer) throws(IndexBuildError) {
    var done = 0
    while done < bytes.count {
      let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset))
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        throw IndexBuildError(message: "cannot write \(path): \(InputSource.errnoText())")
      }
      done += n
      offset += n
    }
  }
}

/// The index build could not finish; nothing was written under the output's name.
public struct IndexBuildError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// Pass one of ``IndexBuilder``: every ledger and tag row, as the loader judges it, appended
/// to one of `buckets` run files chosen by the top bits of the id's hash. Each bucket is
/// then small enough to resolve in memory, and the buckets in order are the users in hash
/// order, the order the slot table is filled in.
///
/// A run record: hash (u64), operation (u8), state (u8), side file (u16), id length (u32),
/// the operation's payload, the id. Operations: 0 mention, 1 event with a packed time (u64),
/// 2 event with an exact time (u16 length and its line), 3 ledger error, 4 tag (u8 length and
/// the canonical signal, `!` for an invalid one).
final class IndexRuns {
  let folder: String
  let bucketBits: Int
  private var writers: [SequentialWriter] = []
  private(set) var bucketBytes: [Int]
  private(set) var records = 0
  /// The first write error; later rows are ignored and the build fails.
  private(set) var failure: IndexBuildError?
  private var record: [UInt8] = []

  init(folder: String, buckets: Int, bufferBytes: Int) throws(IndexBuildError) {
    self.folder = folder
    bucketBits = buckets.trailingZeroBitCount
    bucketBytes = [Int](repeating: 0, count: buckets)
    for k in 0..<buckets {
      let path = bucketPath(k)
      let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else {
        throw IndexBuildError(message: "cannot create \(path): \(InputSource.errnoText())")
      }
      writers.append(SequentialWriter(fd: fd, path: path, bufferBytes: bufferBytes))
    }
  }

  deinit {
    for w in writers { close(w.fd) }
  }

  func bucketPath(_ k: Int) -> String { "\(folder)/bucket-\(k)" }

  func bucket(_ h: UInt64) -> Int { bucketBits == 0 ? 0 : Int(h >> UInt64(64 - bucketBits)) }

  func add(_ id: UnsafeRawBufferPointer, file: Int, _ effect: SideFileLoader.Effect) {
    guard failure == nil else { return }
    let h = ConsentIndex.hash(id)
    record.removeAll(keepingCapacity: true)
    func append<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { record.append(contentsOf: $0) }
    }
    var op: UInt8 = 0
    var state: UInt8 = 0
    var packed: UInt64?
    var exact: [UInt8] = []
    var code: [UInt8] = []
    switch effect {
    case .mention: break
    case .offer(let s, let t):
      state = s.rawValue
      packed = PackedTime.pack(t)
      op = packed == nil ? 2 : 1
      if packed == nil { exact = Array(IndexFile.exactLine(t).utf8) }
    case .ledgerError: op = 3
    case .tag(.none, _): break
    case .tag(.invalid, _):
      op = 4
      code = [UInt8(ascii: "!")]
    case .tag(_, let country):
      op = 4
      code = IndexRuns.canonical(country!)
    }
    append(h)
    append(op)
    append(state)
    append(UInt16(truncatingIfNeeded: file))
    append(UInt32(id.count))
    switch op {
    case 1: append(packed!)
    case 2:
      append(UInt16(exact.count))
      record += exact
    case 4:
      append(UInt8(code.count))
      record += code
    default: break
    }
    record.append(contentsOf: id)
    let k = bucket(h)
    do {
      try writers[k].write(record)
    } catch {
      failure = error
    }
    bucketBytes[k] += record.count
    records += 1
  }

  /// A valid country signal as the index stores it: trimmed of spaces and tabs, upper case
  /// (valid codes are ASCII letters, digits and `-`, at most six bytes).
  static func canonical(_ text: UnsafeRawBufferPointer) -> [UInt8] {
    var start = 0
    var end = text.count
    while start < end && (text[start] == 0x20 || text[start] == 0x09) { start += 1 }
    while end > start && (text[end - 1] == 0x20 || text[end - 1] == 0x09) { end -= 1 }
    return text[start..<end].map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
  }

  /// Flushes and closes every bucket file.
  func finish() throws(IndexBuildError) {
    if let failure { throw failure }
    for w in writers { try w.flush() }
    for w in writers { close(w.fd) }
    writers = []
  }
}
