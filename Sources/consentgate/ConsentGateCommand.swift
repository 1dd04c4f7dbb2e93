import ArgumentParser
import ConsentGate
import Foundation

@main
struct ConsentGateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "consentgate",
    abstract: "Keep EU/EEA records in an AI training corpus only with valid opt-in consent.",
    version: FilterReport.toolVersion,
    subcommands: [FilterCommand.self, ExplainCommand.self, GenerateCommand.self]
  )
}

/// Writes one line to stderr.
func printError(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Prints a usage error and exits 64.
func usageFailure(_ error: UsageError) -> ExitCode {
  printError("consentgate: \(error.message)")
  return ExitCode(64)
}
