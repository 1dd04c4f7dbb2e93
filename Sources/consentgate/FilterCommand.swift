import ArgumentParser
import ConsentGate
import Foundation

struct FilterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "filter",
    abstract: "Keep, drop or quarantine every record of the inputs.",
    discussion: """
      Reason codes, in decision order: \(Reason.allCases.map(\.code).joined(separator: ", ")).
      Exit status: 0 success, 2 data error, 3 quarantine ratio exceeded, 64 usage error,
      70 internal error, 74 output error.
      """
  )

  @OptionGroup var policyOptions: PolicyOptions

  @Option(help: "Output folder (kept/, quarantine/, report.json).")
  var out: String?

  @Option(help: "Quarantine records longer than this many bytes (default 16 MiB).")
  var maxRecordBytes: Int64?

  @Option(help: "Exit 3 when quarantined ÷ records is above this fraction.")
  var maxQuarantineRatio: Double?

  @Option(help: "Output compression: gzip, none or zstd (builds with the ZSTD trait).")
  var compression: String?

  @Option(help: "Gzip level 1…9 (default 6), zstd level 1…19 (default 3).")
  var level: Int64?

  @Option(help: "Worker threads (default: the number of cores).")
  var threads: Int64?

  @Option(
    help: "Inputs read at once, each with its own reading thread (default: one per core).")
  var inputsInFlight: Int?

  @Flag(help: "Write outputs through the page cache, not around it with O_DIRECT.")
  var noDirectIO = false

  @Flag(help: "No progress or summary on stderr.")
  var quiet = false

  @Flag(help: "Keep the outputs of inputs an earlier run into --out completed unchanged.")
  var resume = false

  @Flag(help: "Also write lineage/NAME: each kept file's users and their record counts.")
  var lineage = false

  @Option(
    help: "A file listing input paths, one a line, added to the command line's (repeatable).")
  var inputsFrom: [String] = []

  @Option(
    help: ArgumentHelp(
      "Run shard I of N of the inputs (I/N), or auto: from CONSENTGATE_SHARD, a Slurm array or a Kubernetes Indexed Job.",
      valueName: "I/N|auto"))
  var shard: String?

  @Argument(help: "Input files (gzip or plain JSONL); - is stdin.")
  var inputs: [String] = []

  func run() throws {
    var extra = PolicySettings()
    extra.out = out
    extra.maxRecordBytes = maxRecordBytes
    extra.maxQuarantineRatio = maxQuarantineRatio
    extra.compression = compression
    extra.level = level
    extra.threads = threads
    extra.quiet = quiet ? true : nil
    extra.resume = resume ? true : nil
    extra.lineage = lineage ? true : nil
    let settings: PolicySettings
    let policy: Policy
    do {
      settings = try takingIndexCutoff(try policyOptions.merged(with: extra))
      policy = try settings.policy(runStart: Timestamp.now())
    } catch let error as UsageError {
      throw usageFailure(error)
    }
    guard let outDir = settings.out else { throw usageFailure(UsageError("--out is required")) }
    var inputs = self.inputs
    for list in inputsFrom {
      do {
        inputs += try InputList.read(list)
      } catch {
        throw usageFailure(error)
      }
    }
    guard !inputs.isEmpty else { throw usageFailure(UsageError("at least one input is required")) }
    var shard: Shard?
    if let text = self.shard {
      do {
        if text == "auto" {
          let (found, source) = try Shard.fromEnvironment(ProcessInfo.processInfo.environment)
          shard = found
          if !(settings.quiet ?? false) { printError("consentgate: shard \(found) from \(source)") }
        } else {
          shard = try Shard.parse(text, from: "--shard")
          if !(settings.quiet ?? false) { printError("consentgate: shard \(text) from --shard") }
        }
      } catch {
        throw usageFailure(error)
      }
      // An engine's retry must never run beside an orphan of the same shard.
      guard Shard.dieWithParent() else {
        printError("consentgate: the process that started this shard is gone; stopping")
        throw ExitCode(70)
      }
    }
    if settings.resume == true && settings.cutoff == nil {
      throw usageFailure(UsageError("--resume needs an explicit --cutoff"))
    }
    if let t = settings.threads, t < 1 || t > 1024 {
      throw usageFailure(UsageError("--threads must be between 1 and 1024"))
    }
    if let n = inputsInFlight, n < 1 || n > 1024 {
      throw usageFailure(UsageError("--inputs-in-flight must be between 1 and 1024"))
    }
    let isQuiet = settings.quiet ?? false
    var config = FilterConfiguration(policy: policy, inputs: inputs, outputDirectory: outDir)
    config.consentFiles = settings.consent ?? []
    config.jurisdictionFiles = settings.jurisdictions ?? []
    config.indexFile = settings.index
    if let t = settings.threads { config.threads = Int(t) }
    config.resume = settings.resume ?? false
    config.inputsInFlight = inputsInFlight
    config.directOutput = !noDirectIO
    config.shard = shard

    try runFilter(config, quiet: isQuiet)
  }
}

/// Runs a filter (for `filter` and `purge`): progress and a summary on stderr unless
/// `quiet`, and the exit status of SPEC §5.
func runFilter(_ config: FilterConfiguration, quiet isQuiet: Bool) throws {
  let outDir = config.outputDirectory
  let progress = ProgressLine(enabled: !isQuiet && isatty(2) != 0)
  let report: FilterReport
  let outcome: FilterOutcome
  do {
    (report, outcome) = try Filter(configuration: config).run(
      onMessage: { printError("consentgate: \($0)") },
      onProgress: { progress.update($0) })
  } catch {
    progress.clear()
    switch error {
    case .usage(let e): throw usageFailure(e)
    case .sideFiles(let failure):
      for e in failure.errors { printError("consentgate: \(e)") }
      printError(
        "consentgate: stopped before writing any output (fatal ledger, tag or index error)")
      throw ExitCode(2)
    case .output(let e):
      printError("consentgate: cannot write \(e)")
      throw ExitCode(74)
    }
  }
  progress.clear()
  if !isQuiet { printError(summary(report, outDir: outDir)) }
  if outcome == .quarantineRatioExceeded {
    printError("consentgate: quarantine ratio above --max-quarantine-ratio")
  }
  if outcome != .success { throw ExitCode(outcome.exitCode) }
}

private func summary(_ report: FilterReport, outDir: String) -> String {
  let t = report.totals
  var rows: [(String, String)] = [
    ("records", "\(t.records)"), ("kept", "\(t.kept)"), ("dropped", "\(t.dropped)"),
    ("quarantined", "\(t.quarantined)"),
  ]
  for r in Reason.allCases where t.count(of: r) > 0 {
    rows.append(("  \(r.code)", "\(t.count(of: r))"))
  }
  let failed = report.inputs.filter { $0.status != .ok }
  if !failed.isEmpty { rows.append(("failed inputs", "\(failed.count)")) }
  let width = rows.map(\.0.count).max() ?? 0
  let seconds = max(1, report.finishedAt.seconds - report.startedAt.seconds)
  var lines = rows.map {
    $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1
  }
  let reportPath = report.shard.map { "reports/\($0.reportName)" } ?? "report.json"
  lines.append("report: \(outDir)/\(reportPath) (\(seconds)s)")
  return lines.joined(separator: "\n")
}

/// A one-line progress display on a terminal, redrawn at most four times a second.
final class ProgressLine {
  private let enabled: Bool
  private var last = Date.distantPast
  private let start = Date()
  private var drawn = false

  init(enabled: Bool) { self.enabled = enabled }

  func update(_ p: FilterProgress) {
    guard enabled else { return }
    let now = Date()
    guard now.timeIntervalSince(last) >= 0.25 else { return }
    last = now
    let elapsed = max(0.001, now.timeIntervalSince(start))
    let mb = Double(p.bytesRead) / 1e6
    var text = String(
      format: "%@: %.1f MB, %d records, %.0f records/s, %.1f MB/s",
      p.input, mb, p.records, Double(p.records) / elapsed, mb / elapsed)
    if let total = p.bytesTotal, total > 0, p.bytesRead > 0 {
      let eta = elapsed * (Double(total) / Double(p.bytesRead) - 1)
      text += String(format: ", ETA %.0fs", max(0, eta))
    }
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    drawn = true
  }

  func clear() {
    if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    drawn = false
  }
}
