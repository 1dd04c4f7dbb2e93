import CScanKernels
import Crypto
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writes a file opened with `O_DIRECT`, around the page cache: the bytes are copied into
/// aligned buffers, and a thread of its own writes each full buffer while the next ones fill.
///
/// Why: on the 2-core machine, buffered writes of the ~500 MB that a 1M-record run keeps cost
/// 0.1–0.4 s of kernel CPU (page-cache pages, their copy, ext4's delayed allocation and
/// writeback), while both cores are busy filtering. Here the cost is one copy into a buffer;
/// the thread sleeps while the disk works.
///
/// Not kernel AIO: the kernel tears an AIO context down after an RCU grace period, and exit
/// waited 45 ms for it, which was more than the copy saved. A direct write that extends the
/// file waits for the allocation, so the file's size is set ahead of the data (`ftruncate`:
/// a sparse tail) and cut back to the bytes written in ``finish()``.
///
/// Falls back, for the rest of the file, to ordinary writes when a direct write is refused
/// with EINVAL (a file system without direct I/O at this alignment).
///
/// One thread appends at a time, as for ``OutputFile``. `@unchecked Sendable`: the state
/// that the writing thread shares is guarded by `monitor`; the rest is its own, or the
/// appending thread's once the writing thread has stopped.
final class DirectWriter: @unchecked Sendable {
  /// Bytes per buffer and per write by default: a multiple of every direct-I/O alignment
  /// (≤ 4096).
  static let defaultBufferSize = 4 << 20
  static let alignment = 4096
  /// Buffers in a ring: one fills while the others wait for or are in their write, so that a
  /// slow write does not stall the filling.
  static let bufferCount = 4
  /// How far the file's size is set ahead of the data.
  static let sizeStep: Int64 = 256 << 20

  private let fd: Int32
  /// Bytes per buffer. Tests pass one that is not a multiple of the alignment, which the
  /// kernel refuses, to reach the fallback.
  let bufferSize: Int
  /// Named in errors.
  private let path: String
  /// Allocated as first used: a small file (most quarantine files) takes one. Changed under
  /// `monitor`.
  private var buffers = [UnsafeMutableRawPointer?](repeating: nil, count: bufferCount)

  // The appending thread's own.
  /// The SHA-256 of the bytes appended, up to `hashedUpTo`. Hashing lags behind appending:
  /// it goes two lanes at a time with the input's hash when ``hash(pairing:with:)`` is given
  /// input bytes, and alone only when a buffer is about to be refilled, or at the end.
  private(set) var hasher = SHA256Stream()
  private var hashedUpTo: Int64 = 0
  private var current = 0
  private var filled = 0
  /// The file offset of the first byte of `buffers[current]`.
  private var offset: Int64 = 0
  private var writerStarted = false

  // Shared, under `monitor`.
  private let monitor = Monitor(conditions: 2)
  /// The writing thread waits on it for a buffer to write, or for the end.
  private let submitted = Monitor.Condition(0)
  /// The appending thread waits on it for a buffer to be written, or for the thread to end.
  private let written = Monitor.Condition(1)
  /// Bytes submitted from each buffer and not yet written; 0 when it is free.
  private var pending: [Int]
  private var pendingOffset: [Int64]
  /// The next buffer the writing thread takes: buffers are written in ring order.
  private var nextToWrite = 0
  private var stopping = false
  private var writerRunning = false
  private var failure: OutputError?

  // The writing thread's while it runs, then the appending thread's.
  /// The file's size as set ahead; writes past it wait for their allocation.
  private var sizeAhead: Int64 = 0
  private var canSetSize = true
  /// False once a direct write was refused: the rest goes through the page cache.
  private var direct = true

  /// Writes to `fd`, which must have been opened with `O_DIRECT` and be empty; the caller
  /// closes it.
  init(fd: Int32, path: String, bufferSize: Int = DirectWriter.defaultBufferSize) {
    self.fd = fd
    self.path = path
    self.bufferSize = bufferSize
    pending = Array(repeating: 0, count: DirectWriter.bufferCount)
    pendingOffset = Array(repeating: 0, count: DirectWriter.bufferCount)
  }

  deinit {
    stop()
    for b in buffers { b?.deallocate() }
  }

  /// Whether writes still go around the page cache. Read it when no write is in flight.
  var isDirect: Bool {
    monitor.lock()
    defer { monitor.unlock() }
    return direct
  }

  /// Copies `bytes` in, handing each buffer that fills to the writing thread.
  func append(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
    // After `stop` no thread would write a full buffer, and the next one would wait forever.
    // `stopping` is only ever set on this thread, so reading it here needs no lock.
    precondition(!stopping, "append after finish or stop")
    guard var from = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
      let n = min(left, bufferSize - filled)
      (buffer(current) + filled).copyMemory(from: from, byteCount: n)
      filled += n
      from += n
      left -= n
      if filled == bufferSize { try submitCurrent() }
    }
  }

  private func buffer(_ k: Int) -> UnsafeMutableRawPointer {
    if let b = buffers[k] { return b }
    let b = UnsafeMutableRawPointer.allocate(
      byteCount: bufferSize, alignment: DirectWriter.alignment)
    // Under the lock: the writing thread reads the array.
    monitor.lock()
    buffers[k] = b
    monitor.unlock()
    return b
  }

  /// Writes what is left and sets the file's size to the bytes written; ``hasher`` then
  /// holds the hash of them all. The caller then fsyncs.
  func finish() throws(OutputError) {
    stop()
    if let failure { throw failure }
    hashAlone(upTo: offset + Int64(filled))
    if filled > 0 {
      // The aligned part directly; the tail, which a direct write cannot take, through the
      // page cache.
      let whole = filled & ~(DirectWriter.alignment - 1)
      if whole > 0 { try write(buffers[current]!, whole, at: offset) }
      if filled > whole {
        stopDirect()
        try write(buffers[current]! + whole, filled - whole, at: offset + Int64(whole))
      }
      offset += Int64(filled)
      filled = 0
    }
    if ftruncate(fd, off_t(offset)) != 0 { throw error(errno) }
  }

  /// Waits for the writes in flight and ends the writing thread. Its errors are kept for
  /// ``finish()``.
  func stop() {
    monitor.lock()
    defer { monitor.unlock() }
    stopping = true
    monitor.signal(submitted)
    while writerRunning { monitor.wait(written) }
  }

  /// Hands the full current buffer over and moves on to the next, once that one is written.
  private func submitCurrent() throws(OutputError) {
    let k = current
    let at = offset
    offset += Int64(filled)
    current = (k + 1) % DirectWriter.bufferCount
    // The next buffer's old bytes must be hashed before it is filled again.
    hashAlone(upTo: offset - Int64(DirectWriter.bufferCount - 1) * Int64(bufferSize))
    if !writerStarted { startWriter() }
    monitor.lock()
    defer { monitor.unlock() }
    pending[k] = filled
    pendingOffset[k] = at
    filled = 0
    monitor.signal(submitted)
    while pending[current] > 0 && failure == nil { monitor.wait(written) }
    if let failure { throw failure }
  }

  /// Bytes appended and not yet hashed, as far as they lie in one buffer.
  private func unhashedRun(upTo limit: Int64) -> UnsafeRawBufferPointer {
    let end = min(limit, offset + Int64(filled))
    guard hashedUpTo < end else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    let size = Int64(bufferSize)
    let m = hashedUpTo / size
    let k = Int(m % Int64(DirectWriter.bufferCount))
    let runEnd = min((m + 1) * size, end)
    return UnsafeRawBufferPointer(
      start: buffers[k]! + Int(hashedUpTo - m * size), count: Int(runEnd - hashedUpTo))
  }

  private func hashAlone(upTo limit: Int64) {
    while true {
      let run = unhashedRun(upTo: limit)
      if run.isEmpty { return }
      hasher.update(run)
      hashedUpTo += Int64(run.count)
    }
  }

  /// Hashes `input` into `other`, two lanes at a time with the bytes appended here that are
  /// not hashed yet, as far as there are; the rest of `input` alone.
  func hash(pairing input: UnsafeRawBufferPointer, with other: inout SHA256Stream) {
    var rest = input
    while rest.count >= 64 {
      let run = unhashedRun(upTo: .max)
      if run.count < 64 { break }
      let n = min(run.count, rest.count)
      SHA256Stream.update(
        &other, UnsafeRawBufferPointer(rebasing: rest[0..<n]), &hasher,
        UnsafeRawBufferPointer(rebasing: run[0..<n]))
      hashedUpTo += Int64(n)
      rest = UnsafeRawBufferPointer(rebasing: rest[n...])
    }
    if !rest.isEmpty { other.update(rest) }
  }

  private func startWriter() {
    writerStarted = true
    writerRunning = true
    let thread = Thread { [self] in writeLoop() }
    // It only calls pwrite: a small stack will do.
    thread.stackSize = 256 << 10
    thread.start()
  }

  /// The writing thread: buffers in ring order until stopped with none left.
  private func writeLoop() {
    monitor.lock()
    while true {
      let k = nextToWrite
      if pending[k] == 0 {
        if stopping { break }
        monitor.wait(submitted)
        continue
      }
      let n = pending[k]
      let at = pendingOffset[k]
      let p = buffers[k]!
      let failed = failure != nil
      monitor.unlock()
      var outcome: OutputError?
      if !failed {
        do throws(OutputError) {
          setSizeAhead(at + Int64(n))
          try write(p, n, at: at)
        } catch {
          outcome = error
        }
      }
      monitor.lock()
      if let outcome, failure == nil { failure = outcome }
      pending[k] = 0
      nextToWrite = (k + 1) % DirectWriter.bufferCount
      monitor.signal(written)
    }
    writerRunning = false
    monitor.signal(written)
    monitor.unlock()
  }

  private func setSizeAhead(_ end: Int64) {
    guard direct, canSetSize, end > sizeAhead else { return }
    let size = end + DirectWriter.sizeStep
    if ftruncate(fd, off_t(size)) == 0 {
      sizeAhead = size
    } else {
      // A file-size limit, say. Not an error: the data's own writes report it if it counts.
      canSetSize = false
    }
  }

  /// Writes `n` bytes at `at`, resuming after short writes; a refused direct write goes
  /// through the page cache instead.
  private func write(_ p: UnsafeMutableRawPointer, _ n: Int, at: Int64) throws(OutputError) {
    var done = 0
    while done < n {
      let w = pwrite(fd, p + done, n - done, off_t(at + Int64(done)))
      if w < 0 {
        if errno == EINTR { continue }
        if errno == EINVAL && direct {
          stopDirect()
          continue
        }
        throw error(errno)
      }
      if w == 0 { throw OutputError(path: path, detail: "the write made no progress") }
      done += w
    }
  }

  private func stopDirect() {
    guard direct else { return }
    _ = cg_clear_direct(fd)
    monitor.lock()
    direct = false
    monitor.unlock()
  }

  private func error(_ code: Int32) -> OutputError {
    OutputError(path: path, detail: String(cString: strerror(code)))
  }
}
