import Foundation

/// Runs blocks through per-thread ``BlockProcessor``s and hands the outcomes back in block
/// order, with at most `limit` blocks in flight, so memory stays bounded whatever the input.
///
/// Every block's bytes depend only on the block, and the outcomes are written in sequence
/// order, so output bytes do not depend on the number of threads or on timing.
///
/// `@unchecked Sendable`: every mutable field is read and written only while `condition`
/// is locked; the worker threads share nothing else.
final class OrderedWorkPool: @unchecked Sendable {
  private struct Job {
    var block: RecordBlock
    var sourceJSON: [UInt8]
  }

  private let condition = NSCondition()
  private var queue: [Job] = []
  private var queueHead = 0
  private var finished: [Int: BlockOutcome] = [:]
  private var inFlight = 0
  private var closed = false
  private var nextToHand = 0
  private var running = 0
  let limit: Int

  init(threads: Int, policy: Policy, index: ConsentIndex) {
    limit = threads * 3
    for _ in 0..<threads {
      running += 1
      let thread = Thread { [self] in
        let processor = BlockProcessor(policy: policy, index: index)
        self.work(processor)
      }
      thread.stackSize = 1 << 20
      thread.start()
    }
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
      condition.unlock()
      let outcome = processor.process(job.block, sourceJSON: job.sourceJSON)
      condition.lock()
      finished[outcome.sequence] = outcome
      condition.broadcast()
      condition.unlock()
    }
  }

  /// Starts a new input: block sequence numbers restart at 0.
  func startInput() {
    condition.lock()
    precondition(inFlight == 0)
    nextToHand = 0
    condition.unlock()
  }

  /// Queues a block, waiting while too many are in flight; returns the outcomes now ready,
  /// in order.
  func submit(_ block: RecordBlock, sourceJSON: [UInt8]) -> [BlockOutcome] {
    condition.lock()
    defer { condition.unlock() }
    var ready = takeReadyLocked()
    while inFlight >= limit {
      condition.wait()
      ready += takeReadyLocked()
    }
    queue.append(Job(block: block, sourceJSON: sourceJSON))
    inFlight += 1
    condition.signal()
    return ready
  }

  /// Waits for every block in flight; returns their outcomes in order.
  func drain() -> [BlockOutcome] {
    condition.lock()
    defer { condition.unlock() }
    var ready = takeReadyLocked()
    while inFlight > 0 {
      condition.wait()
      ready += takeReadyLocked()
    }
    return ready
  }

  private func takeReadyLocked() -> [BlockOutcome] {
    var ready: [BlockOutcome] = []
    while let outcome = finished.removeValue(forKey: nextToHand) {
      ready.append(outcome)
      nextToHand += 1
      inFlight -= 1
    }
    return ready
  }

  /// Stops the workers once the queue is empty.
  func shutDown() {
    condition.lock()
    closed = true
    condition.broadcast()
    while running > 0 { condition.wait() }
    condition.unlock()
  }
}
