/// Why a user's records get the decision they get: their ledger events for the purpose,
/// their jurisdiction tags, and the verdict for a record of theirs that carries no country
/// value of its own (SPEC §6 `explain`).
public struct Explanation: Sendable {
  public var userId: String
  public var policy: Policy
  public var events: [ExplainedEvent]
  public var tags: [ExplainedTag]
  public var facts: UserFacts
  public var verdict: Verdict

  /// Loads the side files and explains `userId`. An unknown user is no error: they have no
  /// events and no tags.
  public static func explain(
    userId: String, policy: Policy, consent: [String], jurisdictions: [String]
  ) throws(SideFileFailure) -> Explanation {
    var loader = SideFileLoader(policy: policy)
    loader.explainUser = Array(userId.utf8)
    try loader.load(consent: consent, jurisdictions: jurisdictions)
    let facts = Array(userId.utf8).withUnsafeBytes { loader.index.facts(for: $0) }
    var verdict: Verdict
    if userId.isEmpty {
      verdict = Verdict(reason: .missingUserID)
    } else {
      let grantedAt = loader.index.decidedAt(facts)
      verdict = RecordDecider.decide(
        policy: policy, facts: facts, recordSignals: SignalSet(), grantedAt: { grantedAt }
      ) {
        // A record made after the grant; rows 10–11 depend on each record's own time.
        grantedAt.map(RecordTime.at) ?? .missing
      }
    }
    return Explanation(
      userId: userId, policy: policy, events: loader.explainedEvents,
      tags: loader.explainedTags, facts: facts, verdict: verdict)
  }

  private typealias RecordTime = RecordDecider.RecordTime

  private static func signalWord(_ s: CountrySignal) -> String {
    switch s {
    case .none: "none"
    case .invalid: "invalid"
    case .protected: "protected"
    case .notProtected: "not_protected"
    }
  }

  private static func stateWord(_ s: ConsentState?) -> String? {
    guard let s else { return nil }
    return switch s {
    case .noConsent: "no_consent"
    case .valid: "valid"
    case .noticeOutdated: "notice_outdated"
    case .expired: "consent_expired"
    case .withdrawn: "withdrawn"
    case .objected: "objected"
    }
  }

  private var jurisdictionWord: String {
    if policy.protection.coversEveryone { return "protected" }
    switch Jurisdiction(facts.tags) {
    case .invalid: return "invalid"
    case .protected: return "protected"
    case .notProtected: return "not_protected"
    case .unknown: return "unknown"
    }
  }

  /// The machine-readable form (`explain --json`).
  public var json: JSONValue {
    .object([
      ("user_id", .string(userId)),
      ("purpose", .string(policy.purpose)),
      ("cutoff", .string(policy.cutoff.rfc3339)),
      (
        "events",
        .array(
          events.map { e in
            .object([
              ("file", .string(e.file)), ("line", .int(Int64(e.line))),
              ("purpose", .string(e.purpose)), ("status", .string(e.status)),
              ("recorded_at", .string(e.recordedAt)),
              ("notice_version", e.noticeVersion.map(JSONValue.string) ?? .null),
              ("expires_at", e.expiresAt.map(JSONValue.string) ?? .null),
              ("state_at_cutoff", Self.stateWord(e.state).map(JSONValue.string) ?? .null),
              ("problem", e.problem.map(JSONValue.string) ?? .null),
            ])
          })
      ),
      ("consent_state", .string(Self.stateWord(facts.state)!)),
      ("ledger_error", .bool(facts.ledgerError)),
      (
        "jurisdiction_signals",
        .array(
          tags.map { t in
            .object([
              ("file", .string(t.file)), ("line", .int(Int64(t.line))),
              ("country", t.country.map(JSONValue.string) ?? .null),
              ("signal", .string(Self.signalWord(t.signal))),
            ])
          })
      ),
      ("jurisdiction", .string(jurisdictionWord)),
      ("decision", .string(verdict.reason.disposition.rawValue)),
      ("reason", .string(verdict.reason.code)),
    ])
  }

  /// The text for people.
  public var text: String {
    var lines: [String] = []
    lines.append("user \(userId), purpose \(policy.purpose), cutoff \(policy.cutoff.rfc3339)")
    lines.append("consent events (\(events.count)):")
    for e in events {
      var parts = ["  \(e.file):\(e.line)", e.purpose, e.status, e.recordedAt]
      if let n = e.noticeVersion { parts.append("notice \(n)") }
      if let x = e.expiresAt, !x.isEmpty { parts.append("expires \(x)") }
      if let p = e.problem {
        parts.append("BAD ROW: \(p)")
      } else if e.purpose != policy.purpose {
        parts.append("(other purpose)")
      } else if let s = Self.stateWord(e.state) {
        parts.append("→ \(s)")
      } else {
        parts.append("(after the cutoff, ignored)")
      }
      lines.append(parts.joined(separator: "  "))
    }
    lines.append(
      "consent state: \(Self.stateWord(facts.state)!)\(facts.ledgerError ? " (ledger error)" : "")")
    lines.append("jurisdiction tags (\(tags.count)):")
    for t in tags {
      lines.append("  \(t.file):\(t.line)  \(t.country ?? "null")  → \(Self.signalWord(t.signal))")
    }
    lines.append(
      "jurisdiction from tags: \(jurisdictionWord) (a record's own country values add to this)")
    lines.append("decision: \(verdict.reason.disposition.rawValue) (\(verdict.reason.code))")
    return lines.joined(separator: "\n")
  }
}
