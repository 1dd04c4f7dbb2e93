import CZlib
import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reads a gzip lineage file as ``LineageFile`` writes it: members headed by their size and
/// first id. The file is read once, hashed as it goes (its SHA-256 must be the report's),
/// and only the members whose id range holds a queried user are inflated: for 10,000 ids
/// against a file of 100,000 users, a few dozen of its ~850 members.
///
/// A file that does not start with such a member (plain, zstd, or gzip written otherwise)
/// is not indexed: ``scan(_:expectedSHA256:for:)`` returns nil and the caller reads it whole.
/// A member without the extra field inside an indexed file is inflated whatever its range.
final class IndexedLineage {
  private let stream: UnsafeMutablePointer<z_stream>
  private var output = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
  /// Read buffer: a member never spans more than what is kept of it here.
  private var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 8)

  init() {
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    // 31: a gzip wrapper, whose header (extra field included) and CRC-32 zlib checks.
    let rc = inflateInit2_(stream, 31, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    precondition(rc == Z_OK, "zlib could not start")
  }

  deinit {
    inflateEnd(stream)
    stream.deallocate()
    output.deallocate()
    buffer.deallocate()
  }

  /// One member: its bytes, its first id (nil: not indexed) and its ids' fingerprints.
  private struct Member {
    var bytes: [UInt8]
    var first: [UInt8]?
    var fingerprints: [UInt32] = []
  }

  /// The header of the member at `p` (`available` bytes there): its size and first id, or
  /// nil when it is not an indexed member (or too few bytes are there to tell).
  private static func header(_ p: UnsafeRawPointer, _ available: Int) -> (
    size: Int, first: [UInt8], fingerprints: [UInt32]
  )? {
    guard available >= 24, p.load(as: UInt8.self) == 0x1F,
      p.load(fromByteOffset: 1, as: UInt8.self) == 0x8B,
      p.load(fromByteOffset: 2, as: UInt8.self) == 8,
      p.load(fromByteOffset: 3, as: UInt8.self) == 0x04
    else { return nil }
    let xlen = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self)))
    guard xlen >= 10, available >= 12 + xlen,
      p.load(fromByteOffset: 12, as: UInt8.self) == LineageFile.subfieldID.0,
      p.load(fromByteOffset: 13, as: UInt8.self) == LineageFile.subfieldID.1
    else { return nil }
    let payload = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    guard payload + 4 == xlen else { return nil }
    let size = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
    let idLength = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt16.self)))
    let prints = payload - 6 - idLength
    guard size >= 12 + xlen + 8, prints >= 0, prints % 3 == 0 else { return nil }
    let first = [UInt8](UnsafeRawBufferPointer(start: p + 22, count: idLength))
    var fingerprints: [UInt32] = []
    fingerprints.reserveCapacity(prints / 3)
    var at = 22 + idLength
    for _ in 0..<(prints / 3) {
      fingerprints.append(
        UInt32(p.load(fromByteOffset: at, as: UInt8.self))
          | UInt32(p.load(fromByteOffset: at + 1, as: UInt8.self)) << 8
          | UInt32(p.load(fromByteOffset: at + 2, as: UInt8.self)) << 16)
      at += 3
    }
    return (size, first, fingerprints)
  }

  /// The merge of one file against the sorted query, or nil when the file is not indexed.
  /// Throws when the file is missing, cannot be read, differs from `expectedSHA256`, or
  /// holds a member that does not inflate.
  func scan(
    _ fd: Int32, path: String, expectedSHA256: String, for sorted: [[UInt8]]
  ) throws(AffectedFailure) -> (held: [Int], records: Int)? {
    var hasher = SHA256()
    var start = 0
    var filled = 0
    var atEnd = false
    /// Reads more, keeping the bytes from `start` on at the front.
    func refill() throws(AffectedFailure) {
      let base = buffer.baseAddress!
      if start > 0 {
        memmove(base, base + start, filled - start)
        filled -= start
        start = 0
      }
      if filled == buffer.count {
        let bigger = UnsafeMutableRawBufferPointer.allocate(
          byteCount: buffer.count * 2, alignment: 8)
        bigger.baseAddress!.copyMemory(from: base, byteCount: filled)
        buffer.deallocate()
        buffer = bigger
      }
      while true {
        let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else {
          throw AffectedFailure(message: "\(path): cannot be read (\(InputSource.errnoText()))")
        }
        if n == 0 { atEnd = true }
        hasher.update(
          bufferPointer: UnsafeRawBufferPointer(start: buffer.baseAddress! + filled, count: n))
        filled += n
        return
      }
    }

    var held: [Int] = []
    var records = 0
    var next = 0
    let prints = sorted.map(LineageFile.fingerprint)
    var previousId: [UInt8]?
    var pending: Member?
    var indexed = true
    var isFirst = true

    /// Inflates `member` when its range (from its first id to `upper`, the next member's)
    /// can hold a queried id, and merges its lines.
    func settle(_ member: Member, upper: [UInt8]?) throws(AffectedFailure) {
      if let first = member.first {
        while next < sorted.count && sorted[next].lexicographicallyPrecedes(first) { next += 1 }
        // A queried id in the member's range whose fingerprint it holds: inflate; else the
        // member holds none of them.
        var k = next
        var found = false
        while k < sorted.count && (upper.map { sorted[k].lexicographicallyPrecedes($0) } ?? true) {
          if IndexedLineage.contains(member.fingerprints, prints[k]) {
            found = true
            break
          }
          k += 1
        }
        guard found else { return }
      }
      try inflate(member.bytes, path: path) { line throws(AffectedFailure) in
        guard let (id, count) = AffectedQuery.parseLine(line) else {
          throw AffectedFailure(message: "\(path): not a lineage line")
        }
        if let previousId, !previousId.lexicographicallyPrecedes(id) {
          throw AffectedFailure(message: "\(path): lineage ids out of order")
        }
        previousId = id
        while next < sorted.count && sorted[next].lexicographicallyPrecedes(id) { next += 1 }
        if next < sorted.count && sorted[next] == id {
          held.append(next)
          records += count
          next += 1
        }
      }
    }

    while true {
      if filled - start < 22 + 65_536 && !atEnd { try refill() }
      let available = filled - start
      if available == 0 { break }
      let p = UnsafeRawPointer(buffer.baseAddress! + start)
      var member: Member
      var size: Int
      if let (s, first, fingerprints) = IndexedLineage.header(p, available) {
        size = s
        member = Member(bytes: [], first: first, fingerprints: fingerprints)
      } else {
        // Not an indexed member: only allowed after the first, and then inflated whole.
        if isFirst { indexed = false }
        guard indexed else { break }
        guard let s = IndexedLineage.memberSize(p, available, atEnd: atEnd) else {
          throw AffectedFailure(message: "\(path): not a gzip lineage file as written")
        }
        size = s
        member = Member(bytes: [], first: nil)
      }
      isFirst = false
      while filled - start < size && !atEnd { try refill() }
      guard filled - start >= size else {
        throw AffectedFailure(message: "\(path): truncated gzip member")
      }
      member.bytes = [UInt8](
        UnsafeRawBufferPointer(start: buffer.baseAddress! + start, count: size))
      start += size
      // The next member's first id bounds the previous one's range (none: unbounded).
      if let previous = pending { try settle(previous, upper: member.first) }
      pending = member
    }
    guard indexed else { return nil }
    if let last = pending { try settle(last, upper: nil) }
    while !atEnd { try refill() }
    guard hexString(hasher.finalize()) == expectedSHA256 else {
      throw AffectedFailure(message: "\(path): missing or changed since the report was written")
    }
    return (held, records)
  }

  /// Whether the ascending `fingerprints` hold `f`.
  private static func contains(_ fingerprints: [UInt32], _ f: UInt32) -> Bool {
    var low = 0
    var high = fingerprints.count
    while low < high {
      let mid = (low + high) / 2
      if fingerprints[mid] < f { low = mid + 1 } else { high = mid }
    }
    return low < fingerprints.count && fingerprints[low] == f
  }

  /// The size of a member without the index field: only the last member of a file can be
  /// one (an empty file's single member), so it runs to the end.
  private static func memberSize(_ p: UnsafeRawPointer, _ available: Int, atEnd: Bool) -> Int? {
    guard atEnd, available >= 18, p.load(as: UInt8.self) == 0x1F,
      p.load(fromByteOffset: 1, as: UInt8.self) == 0x8B
    else { return nil }
    return available
  }

  /// Inflates one complete member and calls `body` with each of its lines (without LF).
  private func inflate(
    _ member: [UInt8], path: String,
    _ body: (UnsafeRawBufferPointer) throws(AffectedFailure) -> Void
  ) throws(AffectedFailure) {
    let isize = member.withUnsafeBytes {
      Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: $0.count - 4, as: UInt32.self)))
    }
    if output.count < isize + 1 {
      output.deallocate()
      output = .allocate(byteCount: isize + 1, alignment: 8)
    }
    inflateReset(stream)
    let produced: Int = member.withUnsafeBytes { input in
      stream.pointee.next_in = UnsafeMutablePointer(
        mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self))
      stream.pointee.avail_in = UInt32(input.count)
      stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
      stream.pointee.avail_out = UInt32(output.count)
      let rc = CZlib.inflate(stream, Z_FINISH)
      guard rc == Z_STREAM_END, stream.pointee.avail_in == 0 else { return -1 }
      return output.count - Int(stream.pointee.avail_out)
    }
    guard produced == isize else {
      throw AffectedFailure(message: "\(path): a gzip member does not inflate")
    }
    let base = output.baseAddress!
    var lineStart = 0
    while lineStart < produced, let lf = memchr(base + lineStart, 0x0A, produced - lineStart) {
      let end = base.distance(to: lf)
      try body(UnsafeRawBufferPointer(start: base + lineStart, count: end - lineStart))
      lineStart = end + 1
    }
    guard lineStart == produced else {
      throw AffectedFailure(message: "\(path): a lineage member ends inside a line")
    }
  }
}
