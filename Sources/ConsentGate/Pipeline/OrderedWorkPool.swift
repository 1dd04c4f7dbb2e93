import CScanKernels
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
/// so the steady state allocates nothing. With `--compression none` the outcome refers to
/// its block's buffer (kept lines are written from it), so that buffer goes back only once
/// the writer is done with it.
///
/// `@unchecked Sendable`: every mutable field is read and written only while `monitor` is
/// locked.
final class OrderedWorkPool: RawInputHasher, @unchecked Sendable {
  private struct Job {
    var block: RecordBlock
    var sourceJSON: [UInt8]
  }

  private let monitor = Monitor(conditions: 3)
  /// Workers wait here for jobs; the writer for an outcome it can write or a chunk to hash;
  /// the reading thread for room in the queue, a hashed chunk or the end of its input.
  private let jobsQueued = Monitor.Condition(0)
  private let writerWork = Monitor.Condition(1)
  private let readerWake = Monitor.Condition(2)
  /// Taken jobs are set to nil, so the queue holds no reference to a block being worked on.
  private var queue: [Job?] = []
  private var queueHead = 0
  private var finished: [Int: BlockOutcome] = [:]
  private var submitted = 0
  private var written = 0
  private var recordsWritten = 0
  private var sink: BlockSink?
  private var closed = false
  private var running = 0
  /// Block buffers (the input is decoded into them) and output arrays are recycled apart.
  private var freeBlockBuffers: [BlockBuffer] = []
  private var freeBuffers: [[UInt8]] = []
  private var freeRuns: [[ByteRun]] = []
  /// A raw input chunk waiting to be hashed: copied, or lent by the reading thread, which
  /// leaves its bytes alone until ``waitUntilHashed(_:)`` says they are hashed.
  private enum RawChunk {
    case copied([UInt8])
    case lent(UnsafeRawBufferPointer)
  }
  /// Raw input chunks waiting to be hashed on the writer thread, in read order.
  private var inputChunks: [RawChunk] = []
  private var inputChunksHead = 0
  private var freeChunks: [[UInt8]] = []
  /// Chunks handed over and chunks hashed so far: a chunk's ticket is its place in this order.
  private var chunksHandedOver = 0
  private var chunksHashed = 0
  /// Whether every chunk handed over is hashed. Counted after each hash: the writer takes a
  /// chunk off the queue before it hashes it, outside the lock, so an empty queue does not
  /// mean a finished hash (waiting for an empty queue finalized digests under the writer's
  /// last update now and then).
  private var allChunksHashed: Bool { chunksHashed == chunksHandedOver }
  private var inputHasher = SHA256Stream()
  let limit: Int

  init(threads: Int, policy: Policy, index: UserLookup) {
    limit = threads * 3
    for _ in 0..<threads {
      start { [self] in
        OrderedWorkPool.yieldToSerialStages()
        let processor = BlockProcessor(policy: policy, index: index, keptByReference: true)
        self.work(processor)
      }
    }
    // The writer, like the reading thread, is a stage that cannot be split: it keeps the
    // normal priority.
    start { [self] in
      self.write()
    }
  }

  /// Lowers a worker's scheduling weight (nice +10; Linux threads each have one). On a
  /// machine with fewer cores than threads, the reading and writing threads, the two stages
  /// that cannot be split, then get a core whenever they have work, and the workers share
  /// what is left; when the workers are the bottleneck, the serial stages block on full or
  /// empty queues and give their share back.
  private static func yieldToSerialStages() {
    // Measured on the 2-core machine, ISA-L build, no compression, three runs each: workers
    // and writer at +5 1.75–1.90 s; workers +10, writer 0: 1.60–1.90 s (1.63 median).
    // Before, workers and writer at +5 against none: 1.48× → 1.63× zcat (zlib).
    _ = cg_nice_this_thread(10)
  }

  private func start(_ body: @escaping @Sendable () -> Void) {
    running += 1
    let thread = Thread(block: body)
    thread.stackSize = 1 << 20
    thread.start()
  }

  /// A block buffer, recycled where one is free.
  func takeBuffer() -> BlockBuffer {
    monitor.lock()
    defer { monitor.unlock() }
    return freeBlockBuffers.popLast() ?? BlockBuffer()
  }

  /// Empties `buffer` (it must be uniquely referenced, or emptying would allocate) and keeps
  /// it for reuse.
  private func recycleLocked(_ buffer: inout [UInt8], into list: inout [[UInt8]], max: Int) {
    guard buffer.capacity > 0 && list.count < max else { return }
    var taken: [UInt8] = []
    swap(&taken, &buffer)
    taken.removeAll(keepingCapacity: true)
    list.append(taken)
  }

  private func recycleLocked(_ block: BlockBuffer) {
    if block.capacity > 0 && freeBlockBuffers.count < limit * 2 { freeBlockBuffers.append(block) }
  }

  /// Starts hashing a new input's raw bytes: call before its first byte is handed over.
  /// `continuing` is the state after the bytes that were hashed before (a read-ahead input).
  func beginInputHash(continuing state: SHA256Stream = SHA256Stream()) {
    monitor.lock()
    while !allChunksHashed { monitor.wait(readerWake) }
    inputHasher = state
    monitor.unlock()
  }

  /// Queues a copy of a raw input chunk for hashing on the writer thread.
  func hashCopy(of chunk: UnsafeRawBufferPointer) {
    monitor.lock()
    var copy = freeChunks.popLast() ?? []
    monitor.unlock()
    copy.removeAll(keepingCapacity: true)
    copy.append(contentsOf: chunk)
    monitor.lock()
    inputChunks.append(.copied(copy))
    chunksHandedOver += 1
    monitor.signal(writerWork)
    monitor.unlock()
  }

  /// Queues a raw input chunk for hashing on the writer thread where it is.
  func hashInPlace(_ chunk: UnsafeRawBufferPointer) -> Int {
    monitor.lock()
    defer { monitor.unlock() }
    inputChunks.append(.lent(chunk))
    chunksHandedOver += 1
    monitor.signal(writerWork)
    return chunksHandedOver - 1
  }

  func waitUntilHashed(_ ticket: Int) {
    monitor.lock()
    while chunksHashed <= ticket { monitor.wait(readerWake) }
    monitor.unlock()
  }

  private func work(_ processor: BlockProcessor) {
    while true {
      monitor.lock()
      while queueHead == queue.count && !closed { monitor.wait(jobsQueued) }
      if queueHead == queue.count {
        running -= 1
        monitor.signal(readerWake)
        monitor.unlock()
        return
      }
      let job = queue[queueHead]!
      queue[queueHead] = nil
      queueHead += 1
      if queueHead > 64 && queueHead * 2 > queue.count {
        queue.removeFirst(queueHead)
        queueHead = 0
      }
      var outcome = BlockOutcome(sequence: job.block.sequence)
      outcome.kept = freeBuffers.popLast() ?? []
      outcome.quarantine = freeBuffers.popLast() ?? []
      outcome.keptRuns = freeRuns.popLast() ?? []
      monitor.unlock()
      processor.process(job.block, sourceJSON: job.sourceJSON, into: &outcome)
      monitor.lock()
      // A block whose kept lines are written from it goes back only once written.
      if outcome.source == nil { recycleLocked(job.block.buffer) }
      finished[outcome.sequence] = outcome
      // The writer waits only for the next block in order: one that overtook it is taken
      // when that one arrives.
      if outcome.sequence == written { monitor.signal(writerWork) }
      monitor.unlock()
    }
  }

  private func write() {
    monitor.lock()
    while true {
      if inputChunksHead < inputChunks.count {
        let chunk = inputChunks[inputChunksHead]
        inputChunks[inputChunksHead] = .lent(UnsafeRawBufferPointer(start: nil, count: 0))
        inputChunksHead += 1
        if inputChunksHead == inputChunks.count {
          inputChunks.removeAll(keepingCapacity: true)
          inputChunksHead = 0
        }
        // The input is hashed two lanes at a time with the kept output's bytes not hashed
        // yet: only this thread writes the sink's files until the input is finished.
        let kept = sink?.kept
        monitor.unlock()
        switch chunk {
        case .copied(var bytes):
          bytes.withUnsafeBytes { hashInput($0, pairing: kept) }
          monitor.lock()
          recycleLocked(&bytes, into: &freeChunks, max: 8)
        case .lent(let bytes):
          hashInput(bytes, pairing: kept)
          monitor.lock()
        }
        chunksHashed += 1
        monitor.signal(readerWake)
        continue
      }
      if sink != nil, var outcome = finished.removeValue(forKey: written) {
        let sink = self.sink!
        monitor.unlock()
        sink.consume(outcome)
        monitor.lock()
        written += 1
        recordsWritten += outcome.counts.records
        recycleLocked(&outcome.kept, into: &freeBuffers, max: limit * 4)
        recycleLocked(&outcome.quarantine, into: &freeBuffers, max: limit * 4)
        if let source = outcome.source { recycleLocked(source) }
        if outcome.keptRuns.capacity > 0 && freeRuns.count < limit * 2 {
          outcome.keptRuns.removeAll(keepingCapacity: true)
          freeRuns.append(outcome.keptRuns)
        }
        monitor.signal(readerWake)
        continue
      }
      if closed && queueHead == queue.count && finished.isEmpty && submitted == written
        && allChunksHashed
      {
        running -= 1
        monitor.signal(readerWake)
        monitor.unlock()
        return
      }
      monitor.wait(writerWork)
    }
  }

  private func hashInput(_ bytes: UnsafeRawBufferPointer, pairing kept: OutputFile?) {
    if let kept {
      kept.hash(pairing: bytes, with: &inputHasher)
    } else {
      inputHasher.update(bytes)
    }
  }

  /// Starts a new input whose outcomes go to `sink`; block sequence numbers restart at 0.
  func startInput(_ sink: BlockSink) {
    monitor.lock()
    precondition(submitted == written && finished.isEmpty)
    self.sink = sink
    submitted = 0
    written = 0
    recordsWritten = 0
    monitor.unlock()
  }

  /// Queues a block, waiting while too many are in flight unless `waiting` is false (blocks
  /// read ahead, whose memory is spent already).
  func submit(_ block: RecordBlock, sourceJSON: [UInt8], waiting: Bool = true) {
    monitor.lock()
    defer { monitor.unlock() }
    while waiting && submitted - written >= limit { monitor.wait(readerWake) }
    queue.append(Job(block: block, sourceJSON: sourceJSON))
    submitted += 1
    monitor.signal(jobsQueued)
  }

  /// Records written so far for the current input, for progress.
  var recordsDone: Int {
    monitor.lock()
    defer { monitor.unlock() }
    return recordsWritten
  }

  /// Waits until every submitted block is written and every input chunk hashed; the sink
  /// then belongs to the caller. Returns the input's SHA-256.
  func finishInput() -> String {
    monitor.lock()
    while written < submitted || !allChunksHashed { monitor.wait(readerWake) }
    sink = nil
    let digest = hexString(inputHasher.finalize())
    monitor.unlock()
    return digest
  }

  /// Stops the threads once all work is done.
  func shutDown() {
    monitor.lock()
    closed = true
    monitor.broadcast(jobsQueued)
    monitor.signal(writerWork)
    while running > 0 { monitor.wait(readerWake) }
    monitor.unlock()
  }
}
