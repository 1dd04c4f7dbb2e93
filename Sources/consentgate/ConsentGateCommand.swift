import ArgumentParser
import ConsentGate
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

@main
enum Entry {
  static func main() {
    installCrashHandlers()
    // A write past the file-size limit must fail with EFBIG (exit 74), not kill the process.
    signal(SIGXFSZ, SIG_IGN)
    ConsentGateCommand.main()
  }
}

/// A crash is a bug: report it as exit 70 (SPEC §5) rather than a signal. Only
/// async-signal-safe calls are made. Temporary files may remain; no final name is partial.
func installCrashHandlers() {
  for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] {
    signal(sig) { _ in
      let text: StaticString = "consentgate: internal error (a bug: please report it)\n"
      _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
      _exit(70)
    }
  }
}

struct ConsentGateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "consentgate",
    abstract: "Keep EU/EEA records in an AI training corpus only with valid opt-in consent.",
    version: FilterReport.toolVersion,
    subcommands: [
      FilterCommand.self, ExplainCommand.self, GenerateCommand.self, MergeReportsCommand.self,
      AffectedCommand.self, AuditCommand.self, PurgeCommand.self,
    ]
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
