import ArgumentParser
import ConsentGate
import Foundation

/// The options `audit` and `purge` share: the corpus, the new side files and the new cutoff.
/// Every other policy option is the corpus's own (SPEC §11): giving one is a usage error.
struct CorpusOptions: ParsableArguments {
  @Option(help: "The output folder of an earlier filter run.")
  var corpus: String

  @Option(name: .customLong("consent"), help: "The consent ledger now (repeatable).")
  var consent: [String] = []

  @Option(name: .customLong("jurisdictions"), help: "Jurisdiction tags now (repeatable).")
  var jurisdictions: [String] = []

  @Option(help: "A consent index (SPEC §9) instead of --consent and --jurisdictions.")
  var index: String?

  @Option(help: "Judge consent at this RFC 3339 instant (default: now, or the index's).")
  var cutoff: String?

  /// The corpus, checked: its report read and every kept file re-hashed.
  func open() throws -> Corpus {
    do {
      return try Corpus(directory: corpus)
    } catch {
      printError("consentgate: \(error.message)")
      throw ExitCode(2)
    }
  }

  /// The corpus's policy with the new cutoff.
  func policy(_ corpus: Corpus, runStart: Timestamp) throws -> Policy {
    let given = try cutoff ?? index.map { try indexHeader($0).policy.cutoff.rfc3339 }
    do {
      return try corpus.policy(cutoff: given, runStart: runStart)
    } catch {
      throw usageFailure(error)
    }
  }

  /// The index, opened and checked against `policy`, when one is given.
  func openedIndex(policy: Policy) throws -> MappedIndex? {
    try index.map {
      try openIndex($0, policy: policy, consent: consent, jurisdictions: jurisdictions)
    }
  }
}

struct AuditCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit",
    abstract: "Decide every kept record of a corpus again with new consent data.",
    discussion: """
      Writes AUDITDIR/audit.json and AUDITDIR/failing.jsonl (path, line, reason). Exit status:
      0 every kept record still passes, 4 some do not, 2 a kept file does not match the
      corpus's report or a side file is bad, 64 usage error.
      """
  )

  @OptionGroup var options: CorpusOptions

  @Option(help: "Where to write the audit (default: CORPUS/audit/CUTOFF).")
  var out: String?

  func run() throws {
    let corpus = try options.open()
    let start = Timestamp.now()
    let policy = try options.policy(corpus, runStart: start)
    let folder =
      out
      ?? "\(options.corpus)/audit/"
      + Corpus.auditFolderName(cutoff: policy.cutoff, given: options.cutoff)
    var audit = Audit(corpus: corpus, policy: policy)
    audit.consentFiles = options.consent
    audit.jurisdictionFiles = options.jurisdictions
    audit.index = try options.openedIndex(policy: policy)
    let allPass: Bool
    do {
      (_, allPass) = try audit.run(into: folder)
    } catch {
      printError("consentgate: audit: \(error.message)")
      throw ExitCode(2)
    }
    printError("consentgate: audit written to \(folder)")
    if !allPass { throw ExitCode(4) }
  }
}

struct PurgeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "purge",
    abstract: "Filter a corpus's kept files again with new consent data into a new folder.",
    discussion: """
      The corpus's own policy, new side files and cutoff; the new report has derived_from.
      Exit status as filter (0, 2, 3, 64, 74).
      """
  )

  @OptionGroup var options: CorpusOptions

  @Option(help: "The new corpus folder (not the corpus nor inside it).")
  var out: String

  @Option(help: "Worker threads (default: the number of cores).")
  var threads: Int?

  @Option(help: ArgumentHelp("Run shard I of N of the kept files.", valueName: "I/N|auto"))
  var shard: String?

  @Flag(help: "No progress or summary on stderr.")
  var quiet = false

  func run() throws {
    if Self.contains(options.corpus, out) {
      throw usageFailure(UsageError("--out \(out) is the corpus or inside it"))
    }
    let corpus = try options.open()
    let policy = try options.policy(corpus, runStart: Timestamp.now())
    var config = FilterConfiguration(
      policy: policy, inputs: corpus.keptFiles.map { "\(options.corpus)/\($0)" },
      outputDirectory: out)
    config.consentFiles = options.consent
    config.jurisdictionFiles = options.jurisdictions
    config.indexFile = options.index
    if let threads {
      guard (1...1024).contains(threads) else {
        throw usageFailure(UsageError("--threads must be between 1 and 1024"))
      }
      config.threads = threads
    }
    config.derivedFrom = (corpus.reportSHA256, "\(options.corpus)/report.json")
    if let shard {
      do {
        config.shard =
          shard == "auto"
          ? try Shard.fromEnvironment(ProcessInfo.processInfo.environment).0
          : try Shard.parse(shard, from: "--shard")
      } catch {
        throw usageFailure(error)
      }
      _ = Shard.dieWithParent()
    }
    guard !config.inputs.isEmpty else {
      throw usageFailure(UsageError("the corpus \(options.corpus) has no kept files"))
    }
    try runFilter(config, quiet: quiet)
  }

  /// Whether `inner` is `outer` or lies inside it, by real paths (`inner` need not exist).
  static func contains(_ outer: String, _ inner: String) -> Bool {
    func real(_ path: String) -> String? {
      guard let r = realpath(path, nil) else { return nil }
      defer { free(r) }
      return String(cString: r)
    }
    guard let o = real(outer) else { return false }
    var probe = inner
    var tail: [String] = []
    while real(probe) == nil {
      let url = URL(fileURLWithPath: probe)
      tail.insert(url.lastPathComponent, at: 0)
      let parent = url.deletingLastPathComponent().path
      if parent == probe || parent.isEmpty { return false }
      probe = parent
    }
    let i = ([real(probe)!] + tail).joined(separator: "/")
    return i == o || i.hasPrefix(o.hasSuffix("/") ? o : o + "/")
  }
}
