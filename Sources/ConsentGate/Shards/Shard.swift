import CScanKernels

/// One share of a corpus filtered by many independent processes (SPEC §10): the inputs at
/// positions `index`, `index + count`, … of the list sorted by output name.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
  public var index: Int
  public var count: Int

  public init(index: Int, count: Int) throws(UsageError) {
    guard count >= 1, index >= 0, index < count else {
      throw UsageError("shard \(index)/\(count): the index must be from 0 to count - 1")
    }
    self.index = index
    self.count = count
  }

  public var description: String { "\(index)/\(count)" }

  /// Makes this process die with the process that started it (Linux: the parent-death
  /// signal), so that an engine's retry never runs beside an orphan writing the same files.
  /// False when the parent is already gone.
  public static func dieWithParent() -> Bool {
    cg_die_with_parent() != 1
  }

  /// `DIR/reports/` + this name holds the shard's report.
  public var reportName: String {
    "shard-\(Shard.pad(index))-of-\(Shard.pad(count)).json"
  }

  private static func pad(_ v: Int) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, 5 - s.count)) + s
  }

  /// Parses `I/N`, decimal digits only; `what` names where the text came from.
  public static func parse(_ text: String, from what: String) throws(UsageError) -> Shard {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let i = decimal(parts[0]), let n = decimal(parts[1]) else {
      throw UsageError("\(what): \"\(text)\" is not a shard I/N")
    }
    do {
      return try Shard(index: i, count: n)
    } catch {
      throw UsageError("\(what): shard \(text): the index must be below the count")
    }
  }

  /// A non-negative decimal number without sign or spaces, or nil.
  static func decimal(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else {
      return nil
    }
    return Int(text)
  }

  /// The shard named by the environment, for `--shard auto`: the first of
  /// `CONSENTGATE_SHARD`, a Slurm array task, a Kubernetes Indexed Job that is set decides.
  /// Returns the shard and where it came from.
  public static func fromEnvironment(_ env: [String: String]) throws(UsageError) -> (
    Shard, String
  ) {
    if let text = env["CONSENTGATE_SHARD"] {
      return (try parse(text, from: "CONSENTGATE_SHARD"), "CONSENTGATE_SHARD=\(text)")
    }
    if let id = env["SLURM_ARRAY_TASK_ID"] {
      func number(_ name: String, default value: Int? = nil) throws(UsageError) -> Int {
        guard let text = env[name] else {
          if let value { return value }
          throw UsageError("\(name) is not set (needed with SLURM_ARRAY_TASK_ID)")
        }
        guard let v = decimal(Substring(text)) else {
          throw UsageError("\(name): \"\(text)\" is not a whole number")
        }
        return v
      }
      guard let task = decimal(Substring(id)) else {
        throw UsageError("SLURM_ARRAY_TASK_ID: \"\(id)\" is not a whole number")
      }
      let min = try number("SLURM_ARRAY_TASK_MIN")
      let step = try number("SLURM_ARRAY_TASK_STEP", default: 1)
      let count = try number("SLURM_ARRAY_TASK_COUNT")
      guard step >= 1 else { throw UsageError("SLURM_ARRAY_TASK_STEP must be at least 1") }
      guard task >= min, (task - min) % step == 0 else {
        throw UsageError(
          "SLURM_ARRAY_TASK_ID \(task) is not SLURM_ARRAY_TASK_MIN \(min) plus a whole number of SLURM_ARRAY_TASK_STEP \(step)"
        )
      }
      let index = (task - min) / step
      do {
        return (
          try Shard(index: index, count: count),
          "Slurm array task \(task) (min \(min), step \(step), count \(count))"
        )
      } catch {
        throw UsageError(
          "SLURM_ARRAY_TASK_ID \(task) gives shard \(index), not below SLURM_ARRAY_TASK_COUNT \(count)"
        )
      }
    }
    if let text = env["JOB_COMPLETION_INDEX"] {
      guard let index = decimal(Substring(text)) else {
        throw UsageError("JOB_COMPLETION_INDEX: \"\(text)\" is not a whole number")
      }
      guard let countText = env["CONSENTGATE_SHARD_COUNT"] else {
        throw UsageError("CONSENTGATE_SHARD_COUNT is not set (needed with JOB_COMPLETION_INDEX)")
      }
      guard let count = decimal(Substring(countText)) else {
        throw UsageError("CONSENTGATE_SHARD_COUNT: \"\(countText)\" is not a whole number")
      }
      do {
        return (
          try Shard(index: index, count: count),
          "Kubernetes JOB_COMPLETION_INDEX=\(index), CONSENTGATE_SHARD_COUNT=\(count)"
        )
      } catch {
        throw UsageError(
          "JOB_COMPLETION_INDEX \(index) is not below CONSENTGATE_SHARD_COUNT \(count)")
      }
    }
    throw UsageError(
      "--shard auto: none of CONSENTGATE_SHARD, SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX is set"
    )
  }

  /// The positions in `names` (output names) of this shard's inputs: sorted by name as
  /// bytes, then every `count`-th from `index`; returned in that sorted order.
  public func select(outputNames names: [String]) -> [Int] {
    let sorted = names.indices.sorted {
      Array(names[$0].utf8).lexicographicallyPrecedes(Array(names[$1].utf8))
    }
    return stride(from: index, to: sorted.count, by: count).map { sorted[$0] }
  }
}
