// One file for the run's whole sequence: checks before anything is touched, clearing, resume,
// the lanes, the report. It reads top to bottom; splitting it is part of issue 23.
import Foundation

/// Everything a filter run needs beyond the policy: where inputs, side files and outputs are,
/// and how to run. None of it enters the policy hash.
public struct FilterConfiguration: Sendable {
  public var policy: Policy
  /// Input paths; `-` is stdin.
  public var inputs: [String]
  public var outputDirectory: String
  public var consentFiles: [String] = []
  public var jurisdictionFiles: [String] = []
  /// A consent index file (SPEC §9) used instead of `consentFiles` and `jurisdictionFiles`.
  public var indexFile: String?
  public var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
  public var resume = false
  /// Inputs read at once; nil: as many as there are cores (at most `threads`), so that when
  /// there are several files, inflating, which one file cannot split, runs on every core.
  public var inputsInFlight: Int?
  /// Bytes a block of records holds before it is cut (the unit of parallel work).
  public var blockTarget = 1 << 20
  /// Bytes of the first input read ahead while the side files load (0: none). About 30 ms of
  /// ISA-L inflate here; 100k users load in about 40 ms, of which the read-ahead fills ~20.
  public var readAhead = 32 << 20
  /// Write `kept/` and `quarantine/` around the page cache (`O_DIRECT`) where the file system
  /// allows it: buffered writes cost a quarter of a core here (see ``DirectWriter``).
  public var directOutput = true
  /// Run only this share of the inputs (SPEC §10): the report goes to `DIR/reports/`, and
  /// only this shard's inputs' files are cleared.
  public var shard: Shard?
  /// For `purge`: the corpus report the inputs (its kept files) came from (SHA-256, path),
  /// recorded as the report's `derived_from`.
  public var derivedFrom: (sha256: String, path: String)?

  public init(policy: Policy, inputs: [String], outputDirectory: String) {
    self.policy = policy
    self.inputs = inputs
    self.outputDirectory = outputDirectory
  }
}

/// How a run ended, beyond its report (SPEC §5).
public enum FilterOutcome: Sendable, Equatable {
  case success
  /// An input was truncated, corrupt or unreadable (exit 2).
  case dataError
  /// The quarantine ratio is above `--max-quarantine-ratio` (exit 3).
  case quarantineRatioExceeded
  /// An output could not be written (exit 74).
  case outputError

  /// The process exit status.
  public var exitCode: Int32 {
    switch self {
    case .success: 0
    case .dataError: 2
    case .quarantineRatioExceeded: 3
    case .outputError: 74
    }
  }
}

/// Why a run stopped before writing any output.
public enum FilterFailure: Error, Sendable {
  /// A usage error (exit 64), such as two inputs whose output names collide.
  case usage(UsageError)
  /// A ledger or tag file is bad (exit 2); the errors name file and line.
  case sideFiles(SideFileFailure)
  /// The output folder cannot be used (exit 74).
  case output(OutputError)
}

/// Progress of a run, for a terminal display.
public struct FilterProgress: Sendable {
  public var input: String
  public var bytesRead: UInt64
  public var bytesTotal: UInt64?
  public var records: Int
}

/// The filter: reads each input, decides every record, writes kept and quarantine files and
/// the report. This is the library's entry point; the `consentgate filter` command is a thin
/// layer over it.
///
///     let policy = Policy(cutoff: Timestamp.parseRFC3339("2026-01-01T00:00:00Z")!)
///     var config = FilterConfiguration(policy: policy, inputs: ["posts.jsonl.gz"],
///                                      outputDirectory: "out")
///     config.consentFiles = ["consent.csv"]
///     let (report, outcome) = try Filter(configuration: config).run()
public struct Filter: Sendable {
  public let configuration: FilterConfiguration

  public init(configuration: FilterConfiguration) {
    self.configuration = configuration
  }

  /// True when `path` names a regular file (not stdin, a FIFO or a device); `stat` does not
  /// block where `open` on a FIFO would.
  static func isRegularFile(_ path: String) -> Bool {
    guard path != "-" else { return false }
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
  }

  /// The output file name of an input: its file name without a trailing `.gz` or `.zst`,
  /// plus the output compression's suffix; stdin is `stdin.jsonl`.
  public static func outputName(forInput path: String, compression: OutputCompression) -> String {
    outputStem(forInput: path) + compression.suffix
  }

  /// An input's output name before the compression's suffix.
  static func outputStem(forInput path: String) -> String {
    var name = path == "-" ? "stdin.jsonl" : InputSource.fileName(of: path)
    if name.hasSuffix(".gz") {
      name.removeLast(3)
    } else if name.hasSuffix(".zst") {
      name.removeLast(4)
    }
    return name
  }

  /// Every name an input's outputs may have had under any output compression.
  static func outputNameVariants(forInput path: String) -> [String] {
    let stem = outputStem(forInput: path)
    return [stem, stem + ".gz", stem + ".zst"]
  }

  /// Runs the filter. Warnings and per-input errors go into the report; `onMessage` gets one
  /// line per problem (file and line, never record content) as it happens.
  public func run(
    onMessage: (String) -> Void = { _ in },
    onProgress: (FilterProgress) -> Void = { _ in }
  ) throws(FilterFailure) -> (FilterReport, FilterOutcome) {
    let config = configuration
    let policy = config.policy
    let startedAt = Timestamp.now()
    var names: [String: String] = [:]
    for input in config.inputs {
      let name = Filter.outputName(forInput: input, compression: policy.compression)
      if let other = names[name] {
        throw .usage(UsageError("inputs \(other) and \(input) would both write \(name)"))
      }
      names[name] = input
    }
    // A shard runs its share of the inputs, in output-name order.
    let inputs =
      config.shard.map { shard in
        shard.select(
          outputNames: config.inputs.map {
            Filter.outputName(forInput: $0, compression: policy.compression)
          }
        ).map { config.inputs[$0] }
      } ?? config.inputs
    // An index that is no index, or was built for another policy, stops the run here.
    let mapped = try config.indexFile.map { (path) throws(FilterFailure) in
      try ConsentSources.openIndex(
        path, policy: policy, consent: config.consentFiles,
        jurisdictions: config.jurisdictionFiles)
    }
    let dir = config.outputDirectory
    if let inside = OutputLayout.inputInsideOutputs(config.inputs, directory: dir) {
      throw .usage(
        UsageError("input \(inside) lies inside the output folder \(dir); write to another --out"))
    }
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
      throw .output(OutputError(path: dir, detail: "cannot create the output folder"))
    }
    let root: OutputFolder
    do throws(OutputError) {
      root = try OutputFolder(path: dir)
      // Before anything is deleted: a linked or misplaced output folder stops the run here.
      try root.requireRealFolders(OutputLayout.folders)
    } catch {
      throw .output(error)
    }
    // The report this run replaces: a shard's own, never DIR/report.json (SPEC §10).
    let reportFolder: OutputFolder
    let reportName = config.shard?.reportName ?? "report.json"
    if config.shard != nil {
      do {
        reportFolder = try root.subfolder("reports")
      } catch {
        throw .output(error)
      }
    } else {
      reportFolder = root
    }
    reportFolder.remove(reportName)

    // The first input is read ahead on the idle core while the side files load. Not under
    // --resume, which may take that input from an earlier run; only from a regular file,
    // since a read from stdin or a FIFO can block, and a bad ledger must end the run at once.
    let prefetch =
      config.threads > 1 && config.readAhead > 0 && !config.resume && !inputs.isEmpty
        && !(config.consentFiles.isEmpty && config.jurisdictionFiles.isEmpty && mapped == nil)
        && Filter.isRegularFile(inputs[0])
      ? InputPrefetch(
        path: inputs[0], blockTarget: config.blockTarget,
        maxRecordBytes: policy.maxRecordBytes, budget: config.readAhead)
      : nil
    // Whatever stops the run, the read-ahead thread stops before this returns.
    defer { _ = prefetch?.take() }

    let sources: ConsentSources
    do {
      sources = try ConsentSources.load(
        policy: policy, consent: config.consentFiles, jurisdictions: config.jurisdictionFiles,
        index: mapped)
    } catch {
      throw .sideFiles(error)
    }

    var report = FilterReport(policy: policy, startedAt: startedAt, threads: config.threads)
    report.shard = config.shard
    report.derivedFrom = config.derivedFrom
    report.consentFiles = sources.consentFiles
    report.jurisdictionFiles = sources.jurisdictionFiles
    report.index = sources.index
    if policy.unknownJurisdiction == .allow && !policy.protection.coversEveryone {
      report.warnings.append(
        "--unknown-jurisdiction allow: records without any country signal are treated as not protected"
      )
    }
    let layout: OutputLayout
    do throws(OutputError) {
      layout = try OutputLayout(root: root, lineage: policy.lineage)
    } catch {
      throw .output(error)
    }
    let completion = CompletionRecords(
      folder: layout.done,
      outputFolders: ["kept": layout.kept, "quarantine": layout.quarantine].merging(
        layout.lineage.map { ["lineage": $0] } ?? [:]
      ) { a, _ in a }, lineage: policy.lineage,
      tool: report.tool, policySHA256: report.policySHA256,
      sideFiles: sources.roles)
    let outputNames = inputs.map {
      Filter.outputName(forInput: $0, compression: policy.compression)
    }
    // Whatever this run will not write goes: other inputs' files, other suffixes, stray
    // temporaries and anything planted. Under --resume the files of this run's inputs stay
    // until they are checked.
    // A shard clears only its own inputs' files: other shards may be writing theirs now.
    let owned = Set(inputs.flatMap(Filter.outputNameVariants))
    layout.clear(
      keeping: config.resume ? outputNames : [],
      owns: config.shard == nil ? { _ in true } : { owned.contains($0) })

    // Which inputs to run: under --resume, completed ones are taken as they are.
    var results = [InputResult?](repeating: nil, count: inputs.count)
    var todo: [Int] = []
    for (k, input) in inputs.enumerated() {
      if config.resume {
        switch completion.check(input: input, outputName: outputNames[k]) {
        case .reuse(let input, let outputs):
          results[k] = InputResult(input: input, outputs: outputs, reused: true)
          continue
        case .redo(let why):
          if let why { report.warnings.append(why) }
        }
      }
      // A redone input keeps nothing of the earlier run, so that if it fails now, no file
      // of it is left under a final name.
      completion.forget(outputName: outputNames[k])
      todo.append(k)
    }

    let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let lanes =
      config.threads > 1
      ? max(1, min(todo.count, config.inputsInFlight ?? min(config.threads, cores))) : 1
    let lane = Lanes(
      inputs: inputs, todo: todo, layout: layout, policy: policy,
      blockTarget: config.blockTarget, directOutput: config.directOutput, prefetch: prefetch)
    withoutActuallyEscaping(onMessage) { onMessage in
      withoutActuallyEscaping(onProgress) { onProgress in
        lane.onMessage = onMessage
        lane.onProgress = onProgress
        if lanes == 1 {
          let pool =
            config.threads > 1
            ? OrderedWorkPool(threads: config.threads, policy: policy, index: sources.lookup) : nil
          let inline = pool == nil ? BlockProcessor(policy: policy, index: sources.lookup) : nil
          lane.run(pool: pool, inline: inline)
          pool?.shutDown()
        } else {
          // Each lane reads one input at a time with its own pool; outputs and report do
          // not depend on which lane ran which input.
          let workers = max(1, config.threads / lanes)
          let done = DispatchSemaphore(value: 0)
          for _ in 0..<lanes {
            let thread = Thread { [lane, index = sources.lookup] in
              let pool = OrderedWorkPool(threads: workers, policy: policy, index: index)
              lane.run(pool: pool, inline: nil)
              pool.shutDown()
              done.signal()
            }
            thread.stackSize = 1 << 20
            thread.start()
          }
          for _ in 0..<lanes { done.wait() }
        }
        lane.onMessage = nil
        lane.onProgress = nil
      }
    }
    for (k, result) in lane.results { results[k] = result }

    var outputFailed = false
    for (k, result) in results.enumerated() {
      guard let result else { continue }
      report.inputs.append(result.input)
      report.outputs += result.outputs
      report.warnings += result.warnings
      if result.reused { continue }
      if result.outputFailed { outputFailed = true }
      if result.input.status == .ok && !result.outputFailed {
        completion.record(input: result.input, outputs: result.outputs, outputName: outputNames[k])
      }
    }

    var applicable: [FilterOutcome] = []
    if report.inputs.contains(where: { $0.status != .ok }) { applicable.append(.dataError) }
    if let limit = policy.maxQuarantineRatio, let ratio = report.quarantineRatio, ratio > limit {
      applicable.append(.quarantineRatioExceeded)
    }
    if outputFailed { applicable.append(.outputError) }
    report.finishedAt = Timestamp.now()
    do {
      let text = report.json.bytes(sorted: false, indent: 0) + [0x0A]
      try writeAtomically(text, to: reportName, in: reportFolder)
    } catch {
      onMessage("cannot write \(reportFolder.path)/\(reportName): \(error.detail)")
      applicable.append(.outputError)
    }
    // Where several apply, the lowest non-zero exit code wins.
    let outcome = applicable.min { $0.exitCode < $1.exitCode } ?? .success
    return (report, outcome)
  }
}

extension Timestamp {
  /// The current time, to the whole second.
  public static func now() -> Timestamp {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Timestamp(seconds: Int64(ts.tv_sec))
  }
}
