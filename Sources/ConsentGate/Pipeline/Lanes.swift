import Foundation

/// Hands out inputs to the threads that read them, one at a time, in input order, and
/// collects their results.
///
/// `@unchecked Sendable`: the mutable fields are used only while `lock` is held; the
/// callbacks are set before the lane threads start and cleared after they all finish.
final class Lanes: @unchecked Sendable {
  private let inputs: [String]
  private let todo: [Int]
  private let layout: OutputLayout
  private let policy: Policy
  private let blockTarget: Int
  private let directOutput: Bool
  /// Input 0 read ahead, handed to the lane that runs it.
  private let prefetch: InputPrefetch?
  private let lock = NSLock()
  private var next = 0
  private(set) var results: [Int: InputResult] = [:]
  var onMessage: ((String) -> Void)?
  var onProgress: ((FilterProgress) -> Void)?

  init(
    inputs: [String], todo: [Int], layout: OutputLayout, policy: Policy, blockTarget: Int,
    directOutput: Bool, prefetch: InputPrefetch? = nil
  ) {
    self.directOutput = directOutput
    self.prefetch = prefetch
    self.inputs = inputs
    self.todo = todo
    self.layout = layout
    self.policy = policy
    self.blockTarget = blockTarget
  }

  /// Runs inputs until none is left.
  func run(pool: OrderedWorkPool?, inline: BlockProcessor?) {
    while true {
      lock.lock()
      let k = next < todo.count ? todo[next] : nil
      next += 1
      lock.unlock()
      guard let k else { return }
      let input = inputs[k]
      let run = InputRun(
        path: input,
        outputName: Filter.outputName(forInput: input, compression: policy.compression),
        layout: layout, policy: policy, blockTarget: blockTarget,
        directOutput: directOutput)
      let result = run.execute(
        pool: pool, inline: inline, ahead: k == 0 ? prefetch?.take() : nil,
        onMessage: { [self] text in
          lock.lock()
          onMessage?(text)
          lock.unlock()
        },
        onProgress: { [self] progress in
          lock.lock()
          onProgress?(progress)
          lock.unlock()
        })
      lock.lock()
      results[k] = result
      lock.unlock()
    }
  }
}
