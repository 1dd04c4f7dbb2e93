import Crypto
import Foundation

/// Runs blocks through per-thread ``BlockProcessor``s and writes the outcomes in block order
/// on a writer thread, with at most `limit` blocks in flight, so memory stays bounded
/// whatever the input.
///
///     reading thread ──blocks──▶ workers (decide, compress) ──outcomes──▶ writer thread
///          ▲                                                                 │
///          └──────────────── byte buffers, recycled ◀────────────────────────┘
///
/// The reading thread only reads, inflates and frames: on a two-core machine inflate is the
/// longest single stage, so everything else happens elsewhere. Every block's output depends
/// only on the block, and outcomes are written in sequence order, so output bytes do not
/// depend on the number of threads or on timing. Buffers go back to a free list after use,
/// so the steady state allocates nothing.
///
/// `@unchecked Sendable`: every mutable field is read and written only while `condition`
/// is locked.
final class OrderedWorkPool: @unchecked Sendable {
  private struct Job {
    var block: RecordBlock
    var sourceJSON: [UInt8]
  }

  private let condition = NSCondition()
  private var queue: [Job] = []
  private var queueHead = 0
  private var finished: [Int: BlockOutcome] = [:]
  private var submitted = 0
  private var written = 0
  private var recordsWritten = 0
  private var sink: BlockSink?
  private var closed = false
  private var running = 0
  /// Block byte arrays (about a block and a read in size) and output arrays are kept apart,
  /// so that a block never lands in a smaller output array and has to grow.
  private var freeBlockBuffers: [[UInt8]] = []
  private var freeBuffers: [[UInt8]] = []
  /// Raw input chunks waiting to be hashed on the writer thread, in read order.
  private var inputChunks: [[UInt8]] = []
  private var inputChunksHead = 0
  private var freeChunks: [[UInt8]] = []
  private var inputHasher = SHA256()
  let limit: Int

  init(threads: Int, policy: Policy, index: ConsentIndex) {
    limit = threads * 3
    for _ in 0..<threads {
      start { [self] in
        let processor = BlockProcessor(policy: policy, index: index)
        self.work(processor)
      }
    }
    start { [self] in self.write() }
  }

  private func start(_ body: @escaping @Sendable () -> Void) {
    running += 1
    let thread = Thread(block: body)
    thread.stackSize = 1 << 20
    thread.start()
  }

  /// An empty block buffer, recycled where one is free.
  func takeBuffer() -> [UInt8] {
    condition.lock()
    defer { condition.unlock() }
    return freeBlockBuffers.popLast() ?? []
  }

  private func recycleLocked(_ buffers: [UInt8]...) {
    for var b in buffers where b.capacity > 0 && freeBuffers.count < limit * 4 {
      b.removeAll(keepingCapacity: true)
      freeBuffers.append(b)
    }
  }

  /// Starts hashing a new input's raw bytes: call before its first byte is read.
  func beginInputHash() {
    condition.lock()
    while inputChunksHead < inputChunks.count { condition.wait() }
    inputHasher = SHA256()
    condition.unlock()
  }

  /// Queues a copy of a raw input chunk for hashing on the writer thread.
  func hashInput(_ chunk: UnsafeRawBufferPointer) {
    condition.lock()
    var copy = freeChunks.popLast() ?? []
    condition.unlock()
    copy.removeAll(keepingCapacity: true)
    copy.append(contentsOf: chunk)
    condition.lock()
    inputChunks.append(copy)
    condition.broadcast()
    condition.unlock()
  }

  private func work(_ processor: BlockProcessor) {
    while true {
      condition.lock()
      while queueHead == queue.count && !closed { condition.wait() }
      if queueHead == queue.count {
        running -= 1
        condition.broadcast()
        condition.unlock()
        return
      }
      let job = queue[queueHead]
      queueHead += 1
      if queueHead > 64 && queueHead * 2 > queue.count {
        queue.removeFirst(queueHead)
        queueHead = 0
      }
      let kept = freeBuffers.popLast() ?? []
      let quarantine = freeBuffers.popLast() ?? []
      condition.unlock()
      let outcome = processor.process(
        job.block, sourceJSON: job.sourceJSON, keptBuffer: kept, quarantineBuffer: quarantine)
      condition.lock()
      if freeBlockBuffers.count < limit * 2 {
        var bytes = job.block.bytes
        bytes.removeAll(keepingCapacity: true)
        freeBlockBuffers.append(bytes)
      }
      finished[outcome.sequence] = outcome
      condition.broadcast()
      condition.unlock()
    }
  }

  private func write() {
    condition.lock()
    while true {
      if inputChunksHead < inputChunks.count {
        let chunk = inputChunks[inputChunksHead]
        inputChunksHead += 1
        if inputChunksHead == inputChunks.count {
          inputChunks.removeAll(keepingCapacity: true)
          inputChunksHead = 0
        }
        condition.unlock()
        chunk.withUnsafeBytes { inputHasher.update(bufferPointer: $0) }
        condition.lock()
        if freeChunks.count < 8 { freeChunks.append(chunk) }
        condition.broadcast()
        continue
      }
      if let outcome = finished.removeValue(forKey: written), let sink {
        condition.unlock()
        sink.consume(outcome)
        condition.lock()
        written += 1
        recordsWritten += outcome.counts.records
        recycleLocked(outcome.kept, outcome.quarantine)
        condition.broadcast()
        continue
      }
      if closed && queueHead == queue.count && finished.isEmpty && submitted == written
        && inputChunksHead == inputChunks.count
      {
        running -= 1
        condition.broadcast()
        condition.unlock()
        return
      }
      condition.wait()
    }
  }

  /// Starts a new input whose outcomes go to `sink`; block sequence numbers restart at 0.
  func startInput(_ sink: BlockSink) {
    condition.lock()
    precondition(submitted == written && finished.isEmpty)
    self.sink = sink
    submitted = 0
    written = 0
    recordsWritten = 0
    condition.unlock()
  }

  /// Queues a block, waiting while too many are in flight.
  func submit(_ block: RecordBlock, sourceJSON: [UInt8]) {
    condition.lock()
    defer { condition.unlock() }
    while submitted - written >= limit { condition.wait() }
    queue.append(Job(block: block, sourceJSON: sourceJSON))
    submitted += 1
    condition.broadcast()
  }

  /// Records written so far for the current input, for progress.
  var recordsDone: Int {
    condition.lock()
    defer { condition.unlock() }
    return recordsWritten
  }

  /// Waits until every submitted block is written and every input chunk hashed; the sink
  /// then belongs to the caller. Returns the input's SHA-256.
  func finishInput() -> String {
    condition.lock()
    while written < submitted || inputChunksHead < inputChunks.count { condition.wait() }
    sink = nil
    let digest = hexString(inputHasher.finalize())
    condition.unlock()
    return digest
  }

  /// Stops the threads once all work is done.
  func shutDown() {
    condition.lock()
    closed = true
    condition.broadcast()
    while running > 0 { condition.wait() }
    condition.unlock()
  }
}
