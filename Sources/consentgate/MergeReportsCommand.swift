import ArgumentParser
import ConsentGate

struct MergeReportsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge-reports",
    abstract: "Merge the shard reports in DIR/reports/ into DIR/report.json.",
    discussion: """
      Exit status: as the unsharded run would have had (0, 2 when an input failed, 3 when the
      quarantine ratio over all shards is above the policy's limit); 2 with no report written
      when the shards disagree, one is missing, or an input is in two of them.
      """
  )

  @Argument(help: "The output folder the shards wrote into.")
  var directory: String

  @Option(help: "Merge the shard reports of this count (default: the one count present).")
  var shards: Int?

  func run() throws {
    if let n = shards, n < 1 {
      throw usageFailure(UsageError("--shards must be at least 1"))
    }
    do {
      let (_, exitCode) = try ReportMerger(directory: directory, shards: shards).run()
      if exitCode != 0 { throw ExitCode(exitCode) }
    } catch let refusal as MergeRefusal {
      printError("consentgate: merge-reports refused: \(refusal.message)")
      throw ExitCode(2)
    } catch let error as OutputError {
      printError("consentgate: cannot write \(error)")
      throw ExitCode(74)
    }
  }
}
