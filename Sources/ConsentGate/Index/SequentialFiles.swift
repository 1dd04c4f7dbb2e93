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
  /// The CRC-32 of what went in, when `checksummed`.
  private(set) var crc: UInt32 = 0
  private let checksummed: Bool
  /// Bytes written through this writer.
  private(set) var written = 0
  /// With `blocks`: the CRC-32 of every ``IndexFile/blockBytes`` block written, the last one
  /// once ``finishBlocks()`` is called.
  private(set) var blockCRCs: [UInt32] = []
  private let blocks: Bool
  private var blockCRC: UInt32 = 0

  init(
    fd: Int32, path: String, at offset: Int = 0, bufferBytes: Int = 1 << 20,
    checksummed: Bool = true, blocks: Bool = false
  ) {
    self.blocks = blocks
    self.fd = fd
    self.path = path
    self.offset = offset
    self.bufferBytes = bufferBytes
    self.checksummed = checksummed
    buffer.reserveCapacity(bufferBytes)
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws(IndexBuildError) {
    if checksummed { crc = IndexFile.crc32(bytes, crc) }
    if blocks {
      var at = 0
      while at < bytes.count {
        let room = IndexFile.blockBytes - (written + at) % IndexFile.blockBytes
        let n = min(room, bytes.count - at)
        blockCRC = IndexFile.crc32(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]), blockCRC)
        at += n
        if n == room {
          blockCRCs.append(blockCRC)
          blockCRC = 0
        }
      }
    }
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
    var failure: IndexBuildError?
    withUnsafeBytes(of: value.littleEndian) { b in
      do throws(IndexBuildError) { try write(b) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// Closes the last, partial block of `blockCRCs`: call once, after the last write.
  func finishBlocks() {
    if written % IndexFile.blockBytes != 0 { blockCRCs.append(blockCRC) }
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

/// A file read front to back through a buffer that can hold any one record whole.
final class SequentialReader {
  private let fd: Int32
  private let path: String
  private var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
  private var start = 0
  private var end = 0

  init(fd: Int32, path: String) {
    self.fd = fd
    self.path = path
  }

  deinit { buffer.deallocate() }

  /// Makes `n` bytes available from the current position; false at the end of the file.
  func need(_ n: Int) throws(IndexBuildError) -> Bool {
    if end - start >= n { return true }
    if start > 0 {
      buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
      end -= start
      start = 0
    }
    if buffer.count < n {
      let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 8)
      bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
      buffer.deallocate()
      buffer = bigger
    }
    while end < n {
      let got = read(fd, buffer.baseAddress! + end, buffer.count - end)
      if got < 0 && errno == EINTR { continue }
      guard got >= 0 else {
        throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
      }
      if got == 0 { return false }
      end += got
    }
    return true
  }

  func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    T(littleEndian: buffer.loadUnaligned(fromByteOffset: start + offset, as: T.self))
  }

  /// Bytes made available by ``need(_:)``, valid until the next call of it.
  func bytes(from offset: Int, count: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: buffer[(start + offset)..<(start + offset + count)])
  }

  func consume(_ n: Int) { start += n }
}
