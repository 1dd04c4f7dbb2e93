#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

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
/// the canonical signal, `!` for an invalid one), 5 and 6 as 1 and 2 for a grant with
/// ``ChildFacts``, whose word (u32) follows the time.
///
/// Records are encoded straight into one buffer per bucket (one row at a time, on the
/// loading thread): this is the build's hottest loop after CSV parsing.
final class IndexRuns {
  let folder: String
  let bucketBits: Int
  private var fds: [Int32] = []
  private let bufferBytes: Int
  private let buffers: UnsafeMutableRawPointer
  // Touched for every row by the one loading thread: the exclusivity check is off.
  @exclusivity(unchecked) private var fill: [Int]
  @exclusivity(unchecked) private(set) var bucketBytes: [Int]
  @exclusivity(unchecked) private(set) var bucketRecords: [Int]
  @exclusivity(unchecked) private(set) var records = 0
  /// The first write error; later rows are ignored and the build fails.
  private(set) var failure: IndexBuildError?

  init(folder: String, buckets: Int, bufferBytes: Int) throws(IndexBuildError) {
    self.folder = folder
    bucketBits = buckets.trailingZeroBitCount
    bucketBytes = [Int](repeating: 0, count: buckets)
    bucketRecords = [Int](repeating: 0, count: buckets)
    fill = [Int](repeating: 0, count: buckets)
    self.bufferBytes = bufferBytes
    buffers = UnsafeMutableRawPointer.allocate(byteCount: buckets * bufferBytes, alignment: 8)
    for k in 0..<buckets {
      let path = bucketPath(k)
      let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else {
        throw IndexBuildError(message: "cannot create \(path): \(InputSource.errnoText())")
      }
      fds.append(fd)
    }
  }

  deinit {
    for fd in fds { close(fd) }
    buffers.deallocate()
  }

  func bucketPath(_ k: Int) -> String { "\(folder)/bucket-\(k)" }

  func bucket(_ h: UInt64) -> Int { bucketBits == 0 ? 0 : Int(h >> UInt64(64 - bucketBits)) }

  private func put(_ k: Int, _ bytes: UnsafeRawBufferPointer) {
    var done = 0
    while done < bytes.count && failure == nil {
      let n = write(fds[k], bytes.baseAddress! + done, bytes.count - done)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 {
        failure = IndexBuildError(
          message: "cannot write \(bucketPath(k)): \(InputSource.errnoText())")
      }
      done += max(n, 0)
    }
  }

  private func flush(_ k: Int) {
    put(k, UnsafeRawBufferPointer(start: buffers + k * bufferBytes, count: fill[k]))
    fill[k] = 0
  }

  func add(_ id: UnsafeRawBufferPointer, file: Int, _ effect: SideFileLoader.Effect) {
    guard failure == nil else { return }
    var op: UInt8 = 0
    var state: UInt8 = 0
    var packed: UInt64 = 0
    var text: [UInt8] = []
    var child: UInt32 = 0
    switch effect {
    case .mention: break
    case .offer(let s, let t, let c):
      state = s.rawValue
      child = c.word
      if let word = PackedTime.pack(t) {
        op = child == 0 ? 1 : 5
        packed = word
      } else {
        op = child == 0 ? 2 : 6
        text = Array(IndexFile.exactLine(t).utf8)
      }
    case .ledgerError: op = 3
    case .tag(.none, _): break
    case .tag(.invalid, _):
      op = 4
      text = [UInt8(ascii: "!")]
    case .tag(_, let country):
      op = 4
      text = IndexRuns.canonical(country!)
    }
    let payload: Int
    switch op {
    case 1: payload = 8
    case 2: payload = 2 + text.count
    case 4: payload = 1 + text.count
    case 5: payload = 12
    case 6: payload = 6 + text.count
    default: payload = 0
    }
    let size = 16 + payload + id.count
    let h = ConsentIndex.hash(id)
    let k = bucket(h)
    if fill[k] + size > bufferBytes { flush(k) }
    // A record longer than the buffer (an id of megabytes) goes out through its own.
    let spill =
      size > bufferBytes ? UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8) : nil
    let p = spill ?? buffers + k * bufferBytes + fill[k]
    p.storeBytes(of: h.littleEndian, toByteOffset: 0, as: UInt64.self)
    p.storeBytes(of: op, toByteOffset: 8, as: UInt8.self)
    p.storeBytes(of: state, toByteOffset: 9, as: UInt8.self)
    p.storeBytes(
      of: UInt16(truncatingIfNeeded: file).littleEndian, toByteOffset: 10, as: UInt16.self)
    p.storeBytes(of: UInt32(id.count).littleEndian, toByteOffset: 12, as: UInt32.self)
    var at = 16
    switch op {
    case 1, 5:
      p.storeBytes(of: packed.littleEndian, toByteOffset: 16, as: UInt64.self)
      at += 8
    case 2, 6:
      p.storeBytes(of: UInt16(text.count).littleEndian, toByteOffset: 16, as: UInt16.self)
      at += 2
    case 4:
      p.storeBytes(of: UInt8(text.count), toByteOffset: 16, as: UInt8.self)
      at += 1
    default: break
    }
    if !text.isEmpty {
      text.withUnsafeBytes { (p + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
      at += text.count
    }
    if op >= 5 {
      p.storeBytes(of: child.littleEndian, toByteOffset: at, as: UInt32.self)
      at += 4
    }
    if id.count > 0 { (p + at).copyMemory(from: id.baseAddress!, byteCount: id.count) }
    if let spill {
      put(k, UnsafeRawBufferPointer(start: spill, count: size))
      spill.deallocate()
    } else {
      fill[k] += size
    }
    bucketBytes[k] += size
    bucketRecords[k] += 1
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
    for k in fds.indices { flush(k) }
    if let failure { throw failure }
    for fd in fds { close(fd) }
    fds = []
  }
}
