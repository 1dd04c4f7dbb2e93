import ArgumentParser
import ConsentGate

struct IndexCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "index",
    abstract: "Build, verify or describe a consent index (ledger and tags resolved once).",
    subcommands: [IndexBuildCommand.self, IndexVerifyCommand.self, IndexInfoCommand.self]
  )
}

struct IndexBuildCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "build",
    abstract: "Resolve ledgers and tags at a cutoff into an index file, in bounded memory.",
    discussion: """
      Exit status: 0 built, 2 a bad or changing ledger or tag file (nothing written),
      64 usage error, 74 the index could not be written.
      """
  )

  @Option(help: "The index file to write (atomically).")
  var output: String

  @Option(help: "A policy file; only its side files and the fields an index bakes are read.")
  var policy: String?

  @Option(name: .customLong("consent"), help: "Consent ledger, CSV or JSONL (repeatable).")
  var consent: [String] = []

  @Option(name: .customLong("jurisdictions"), help: "Jurisdiction tags (repeatable).")
  var jurisdictions: [String] = []

  @Option(help: "The processing purpose consent must name (default ai_training).")
  var purpose: String?

  @Option(help: "Judge consent at this RFC 3339 instant (required).")
  var cutoff: String?

  @Option(help: "A grant older than this many days counts as expired.")
  var maxConsentAge: Int64?

  @Option(help: "Privacy-notice versions a grant must name, comma-separated.")
  var noticeVersions: String?

  @Flag(help: "A bad ledger row marks its user instead of stopping the build.")
  var lenientLedger = false

  @Option(help: "Check grants against the age of digital consent: off or check (not built yet).")
  var children: String?

  @Option(help: "A grant without a birth date under --children check: child or adult.")
  var unknownAge: String?

  @Option(help: "Memory for the build's in-memory passes, e.g. 6G or 512M (default: RAM/4).")
  var memory: String?

  func run() throws {
    var cli = PolicySettings()
    cli.consent = consent.isEmpty ? nil : consent
    cli.jurisdictions = jurisdictions.isEmpty ? nil : jurisdictions
    cli.purpose = purpose
    cli.cutoff = cutoff
    cli.maxConsentAge = maxConsentAge
    cli.noticeVersions = noticeVersions.map(PolicySettings.splitList)
    cli.lenientLedger = lenientLedger ? true : nil
    cli.children = children
    cli.unknownAge = unknownAge
    let settings: PolicySettings
    let resolved: Policy
    do {
      settings = try policy.map { cli.overriding(try PolicySettings.load(policyFile: $0)) } ?? cli
      guard settings.cutoff != nil else { throw UsageError("index build needs --cutoff") }
      // Only the baked fields and the side files: the rest of a policy file has no say here.
      var baked = PolicySettings()
      baked.purpose = settings.purpose
      baked.cutoff = settings.cutoff
      baked.maxConsentAge = settings.maxConsentAge
      baked.noticeVersions = settings.noticeVersions
      baked.lenientLedger = settings.lenientLedger
      baked.children = settings.children
      baked.unknownAge = settings.unknownAge
      resolved = try baked.policy(runStart: Timestamp.now())
    } catch let error as UsageError {
      throw usageFailure(error)
    }
    var builder = IndexBuilder(
      policy: resolved, consentFiles: settings.consent ?? [],
      jurisdictionFiles: settings.jurisdictions ?? [])
    if let memory {
      guard let bytes = Self.parseSize(memory), bytes >= 1 << 20 else {
        throw usageFailure(UsageError("--memory must be a size of at least 1M, e.g. 6G"))
      }
      builder.memoryBytes = bytes
    }
    do {
      let header = try builder.build(output: output) { printError("consentgate: \($0)") }
      printError("consentgate: wrote \(output): \(header.users) users")
    } catch {
      switch error {
      case .sideFiles(let failure):
        for e in failure.errors { printError("consentgate: \(e)") }
        printError("consentgate: stopped; no index written")
        throw ExitCode(2)
      case .changed(let path):
        printError("consentgate: \(path) changed while it was read; no index written")
        throw ExitCode(2)
      case .output(let e):
        printError("consentgate: \(e)")
        throw ExitCode(74)
      }
    }
  }

  /// `123`, `512K`, `64M`, `6G` (powers of 1024).
  static func parseSize(_ text: String) -> Int? {
    var digits = Substring(text)
    var unit = 1
    if let last = digits.last,
      let k = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40][
        String(last).uppercased()]
    {
      unit = k
      digits = digits.dropLast()
    }
    guard let n = Int(digits), n >= 0 else { return nil }
    let (v, overflow) = n.multipliedReportingOverflow(by: unit)
    return overflow ? nil : v
  }
}

struct IndexVerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check every checksum of an index and print its header (exit 0 good, 2 bad)."
  )

  @Argument(help: "The index file.")
  var file: String

  @Flag(help: "Print the header as JSON, with the file's SHA-256.")
  var json = false

  func run() throws {
    let header: IndexHeader
    let sha256: String
    do {
      let index = try MappedIndex(path: file)
      sha256 = try index.verify()
      header = index.header
    } catch {
      printError("consentgate: \(error)")
      throw ExitCode(2)
    }
    if json {
      guard case .object(let members) = header.json else { return }
      print(JSONValue.object(members + [("sha256", .string(sha256))]).pretty)
    } else {
      print(header.text + "\nsha256: \(sha256)\nchecksums: good")
    }
  }
}

struct IndexInfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Print an index's header without reading its sections."
  )

  @Argument(help: "The index file.")
  var file: String

  @Flag(help: "Print the header as JSON.")
  var json = false

  func run() throws {
    let header = try indexHeader(file)
    print(json ? header.json.pretty : header.text)
  }
}
