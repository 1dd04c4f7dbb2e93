import Foundation

/// Reads the first input ahead, on a thread of its own, while the side files load.
///
/// Loading a ledger takes one core (about 40 ms for 100k users) and nothing else could run
/// meanwhile: records cannot be decided before the index exists, and no output may be
/// written before the side files are known to be good (SPEC §5: a bad ledger stops the
/// run before any output). Reading and inflating need neither, so this does them on the idle
/// core, up to a fixed number of bytes: memory stays bounded, and a bad ledger costs only the
/// read-ahead. The input's bytes are hashed here until ``InputRun`` hands hashing on to its
/// pipeline.
final class InputPrefetch: @unchecked Sendable {
  /// What was read ahead: the input's framer (which goes on where the read-ahead stopped;
  /// past the end it returns nil again), its first blocks, and the error that stopped
  /// reading after them, if any.
  struct ReadAhead {
    var opened: Result<BlockFramer, InputError>
    var blocks: [RecordBlock]
    var error: InputError?
  }

  let path: String
  private let condition = NSCondition()
  private var stopping = false
  private var done = false
  private var taken = false
  // Written by the reading thread until `done`, then only by the thread that takes them.
  private var result: ReadAhead?

  /// Starts reading `path` ahead, up to `budget` bytes of blocks.
  init(path: String, blockTarget: Int, maxRecordBytes: Int, budget: Int) {
    self.path = path
    let thread = Thread { [self] in
      let ahead = readAhead(
        blockTarget: blockTarget, maxRecordBytes: maxRecordBytes, budget: budget)
      condition.lock()
      result = ahead
      done = true
      condition.broadcast()
      condition.unlock()
    }
    thread.stackSize = 1 << 20
    thread.start()
  }

  private func readAhead(blockTarget: Int, maxRecordBytes: Int, budget: Int) -> ReadAhead {
    let framer: BlockFramer
    do {
      framer = try BlockFramer(
        path: path, blockTarget: blockTarget, maxRecordBytes: maxRecordBytes)
    } catch {
      return ReadAhead(opened: .failure(error), blocks: [], error: nil)
    }
    var ahead = ReadAhead(opened: .success(framer), blocks: [], error: nil)
    var bytes = 0
    while bytes < budget {
      condition.lock()
      let stop = stopping
      condition.unlock()
      if stop { break }
      do {
        guard let block = try framer.next() else { break }
        bytes += block.buffer.capacity
        ahead.blocks.append(block)
      } catch {
        ahead.error = error
        break
      }
    }
    return ahead
  }

  /// Stops reading ahead and returns what was read; nil after the first call.
  func take() -> ReadAhead? {
    condition.lock()
    defer { condition.unlock() }
    stopping = true
    while !done { condition.wait() }
    guard !taken else { return nil }
    taken = true
    let ahead = result
    result = nil
    return ahead
  }
}
