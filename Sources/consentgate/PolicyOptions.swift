import ArgumentParser
import ConsentGate

/// The ledger, tag and policy options shared by `filter` and `explain`.
struct PolicyOptions: ParsableArguments {
  @Option(help: "A policy file (JSON); command-line options override it.")
  var policy: String?

  @Option(
    name: .customLong("consent"), help: "Consent ledger, CSV or JSONL, plain or gzip (repeatable).")
  var consent: [String] = []

  @Option(name: .customLong("jurisdictions"), help: "Jurisdiction tags, CSV or JSONL (repeatable).")
  var jurisdictions: [String] = []

  @Option(
    help: "A consent index (consentgate index build) used instead of --consent and --jurisdictions."
  )
  var index: String?

  @Option(help: "The processing purpose consent must name (default ai_training).")
  var purpose: String?

  @Option(help: "Judge consent at this RFC 3339 instant (default: the run's start).")
  var cutoff: String?

  @Option(
    help: "Protected territory: eu, eea, uk, ch, all or codes, comma-separated (default eea).")
  var protect: String?

  @Option(help: "Records without any country signal: quarantine, protect or allow.")
  var unknownJurisdiction: String?

  @Option(help: "Where objections drop records: everywhere or protected-only.")
  var objections: String?

  @Option(help: "Which records a grant covers: all or since-grant.")
  var consentCovers: String?

  @Option(help: "A grant older than this many days counts as expired.")
  var maxConsentAge: Int64?

  @Option(help: "Privacy-notice versions a grant must name, comma-separated.")
  var noticeVersions: String?

  @Option(help: "JSON Pointer to the user id (default /user_id).")
  var userIdPath: String?

  @Option(help: "JSON Pointer to a record's country (repeatable).")
  var countryPath: [String] = []

  @Option(help: "JSON Pointer to the record's time (default /created_at).")
  var timePath: String?

  @Flag(help: "A bad ledger row quarantines its user's records instead of stopping the run.")
  var lenientLedger = false

  @Option(
    help:
      "JSON Pointer to another person's id in a record, * for every array element (repeatable; SPEC §13, not built yet)."
  )
  var embeddedUserPath: [String] = []

  @Option(help: "Records carrying another person who may not be kept: quarantine or drop.")
  var thirdParty: String?

  @Option(help: "Check grants against the age of digital consent: off or check (not built yet).")
  var children: String?

  @Option(help: "A grant without a birth date under --children check: child or adult.")
  var unknownAge: String?

  /// The settings given here, list options only when given.
  var settings: PolicySettings {
    var s = PolicySettings()
    s.consent = consent.isEmpty ? nil : consent
    s.jurisdictions = jurisdictions.isEmpty ? nil : jurisdictions
    s.index = index
    s.purpose = purpose
    s.cutoff = cutoff
    s.protect = protect.map(PolicySettings.splitList)
    s.unknownJurisdiction = unknownJurisdiction
    s.objections = objections
    s.consentCovers = consentCovers
    s.maxConsentAge = maxConsentAge
    s.noticeVersions = noticeVersions.map(PolicySettings.splitList)
    s.userIdPath = userIdPath
    s.countryPath = countryPath.isEmpty ? nil : countryPath
    s.timePath = timePath
    s.lenientLedger = lenientLedger ? true : nil
    s.embeddedUserPath = embeddedUserPath.isEmpty ? nil : embeddedUserPath
    s.thirdParty = thirdParty
    s.children = children
    s.unknownAge = unknownAge
    return s
  }

  /// The policy file's settings overridden by the command line's. An `--index` given here
  /// replaces the policy file's side files, and side files given here its index: only both
  /// from one place are a usage error.
  func merged(with extra: PolicySettings = PolicySettings()) throws(UsageError) -> PolicySettings {
    var cli = settings
    cli = extra.overriding(cli)
    guard let policy else { return cli }
    var file = try PolicySettings.load(policyFile: policy)
    if cli.index != nil {
      file.consent = nil
      file.jurisdictions = nil
    }
    if cli.consent != nil || cli.jurisdictions != nil { file.index = nil }
    return cli.overriding(file)
  }
}
