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
      AffectedCommand.self, AuditCommand.self, PurgeCommand.self, IndexCommand.self,
      RulesCommand.self,
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

/// The header of the index at `path`, or exit 2 naming the file and section.
func indexHeader(_ path: String) throws -> IndexHeader {
  do {
    return try MappedIndex.readHeader(path: path)
  } catch {
    printError("consentgate: \(error)")
    throw ExitCode(2)
  }
}

/// With an index and no cutoff, the cutoff is the index's (SPEC §9): it then counts as given
/// (also for `--resume`).
func takingIndexCutoff(_ settings: PolicySettings) throws -> PolicySettings {
  guard let index = settings.index, settings.cutoff == nil else { return settings }
  var s = settings
  s.cutoff = try indexHeader(index).policy.cutoff.rfc3339
  return s
}

/// Opens the index for a run with `policy`: exit 2 for a bad file, 64 for a policy that
/// differs from the baked one or for side files given beside it.
func openIndex(_ path: String, policy: Policy, consent: [String], jurisdictions: [String]) throws
  -> MappedIndex
{
  do {
    return try ConsentSources.openIndex(
      path, policy: policy, consent: consent, jurisdictions: jurisdictions)
  } catch {
    switch error {
    case .usage(let e): throw usageFailure(e)
    case .sideFiles(let failure):
      for e in failure.errors { printError("consentgate: \(e)") }
      throw ExitCode(2)
    case .output(let e):
      printError("consentgate: cannot write \(e)")
      throw ExitCode(74)
    }
  }
}
