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

  /// The index the facts came from (`explain --index`), which keeps no events: `events` is
  /// then empty and `tags` holds the user's resolved tag signals, without file and line.
  public var indexPath: String?
  /// `recorded_at` of the event in effect.
  public var decidedAt: Timestamp?

  /// The children rule for the grant in effect, under `--children check` (SPEC §13.2).
  public var childRule: ChildRuleOutcome? {
    guard policy.children == .check, facts.state == .valid else { return nil }
    return ChildRuleOutcome(
      child: facts.child, grantedAt: decidedAt,
      ages: policy.protection.coversEveryone ? 0 : facts.tags.ages, unknownAge: policy.unknownAge)
  }

  /// Why that age: the protected codes among the tags with their ages on the grant's date.
  private var ageSources: String {
    if policy.protection.coversEveryone {
      return "--protect all: every user \(AgeOfConsent.defaultAge)"
    }
    let day = decidedAt.map { ChildFacts.dateText(ChildFacts.day(of: $0)) } ?? "9999-12-31"
    let codes = tags.compactMap { t -> String? in
      guard t.signal == .protected, let code = t.country else { return nil }
      return "\(code.uppercased()) \(AgeOfConsent.age(for: code, on: day))"
    }
    if codes.isEmpty { return "no protected country code: \(AgeOfConsent.defaultAge)" }
    return "the highest of " + codes.joined(separator: ", ")
  }

  /// Loads the side files (or verifies `index`) and explains `userId`. An unknown user is
  /// no error: they have no events and no tags.
  public static func explain(
    userId: String, policy: Policy, consent: [String], jurisdictions: [String],
    index: MappedIndex? = nil
  ) throws(SideFileFailure) -> Explanation {
    let id = Array(userId.utf8)
    let lookup: UserLookup
    var events: [ExplainedEvent] = []
    var tags: [ExplainedTag] = []
    if let index {
      // Only the blocks this user's lookup reads are checked: milliseconds, not a whole-file
      // pass, and never an answer from a damaged block.
      var damaged: IndexError?
      id.withUnsafeBytes { b in
        do throws(IndexError) { try index.verifyBlocks(for: b) } catch { damaged = error }
      }
      if let damaged { throw SideFileFailure(errors: [damaged.asSideFileError]) }
      lookup = .mapped(index.lookup(protection: policy.protection))
      if case .mapped(let mapped) = lookup, let e = id.withUnsafeBytes({ lookup.find($0) }) {
        tags = mapped.tagCodes(e).map { code in
          ExplainedTag(
            file: index.path, line: nil, country: code == "!" ? nil : code,
            signal: code == "!" ? .invalid : policy.protection.classify(code))
        }
      }
    } else {
      var loader = SideFileLoader(policy: policy)
      loader.explainUser = id
      try loader.load(consent: consent, jurisdictions: jurisdictions)
      lookup = .loaded(loader.index)
      events = loader.explainedEvents
      tags = loader.explainedTags
    }
    let facts = id.withUnsafeBytes { lookup.facts(for: $0) }
    let grantedAt = lookup.decidedAt(facts)
    var verdict: Verdict
    if userId.isEmpty {
      verdict = Verdict(reason: .missingUserID)
    } else {
      verdict = RecordDecider.decide(
        policy: policy, facts: facts, recordSignals: SignalSet(), grantedAt: { grantedAt }
      ) {
        // A record made after the grant; rows 10–11 depend on each record's own time.
        grantedAt.map(RecordTime.at) ?? .missing
      }
    }
    return Explanation(
      userId: userId, policy: policy, events: events, tags: tags, facts: facts,
      verdict: verdict, indexPath: index?.path, decidedAt: grantedAt)
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
            .object(
              [
                ("file", .string(e.file)), ("line", .int(Int64(e.line))),
                ("purpose", .string(e.purpose)), ("status", .string(e.status)),
                ("recorded_at", .string(e.recordedAt)),
                ("notice_version", e.noticeVersion.map(JSONValue.string) ?? .null),
                ("expires_at", e.expiresAt.map(JSONValue.string) ?? .null),
                ("state_at_cutoff", Self.stateWord(e.state).map(JSONValue.string) ?? .null),
                ("problem", e.problem.map(JSONValue.string) ?? .null),
              ]
                + (policy.children == .check
                  ? [
                    ("birth_date", e.child?.birthDateText.map(JSONValue.string) ?? .null),
                    ("parental_consent", e.child.map { .bool($0.parentalConsent) } ?? .null),
                  ] : []))
          })
      ),
      ("index", indexPath.map(JSONValue.string) ?? .null),
      ("consent_state", .string(Self.stateWord(facts.state)!)),
      ("decided_at", decidedAt.map { .string($0.rfc3339) } ?? .null),
      ("ledger_error", .bool(facts.ledgerError)),
      (
        "jurisdiction_signals",
        .array(
          tags.map { t in
            .object([
              ("file", .string(t.file)), ("line", t.line.map { .int(Int64($0)) } ?? .null),
              ("country", t.country.map(JSONValue.string) ?? .null),
              ("signal", .string(Self.signalWord(t.signal))),
            ])
          })
      ),
      ("jurisdiction", .string(jurisdictionWord)),
      ("children", childJSON),
      ("decision", .string(verdict.disposition.rawValue)),
      ("reason", .string(verdict.reason.code)),
    ])
  }

  /// `children` of `explain --json`: null when off; else the grant in effect's birth date
  /// and parental consent, and the rule as applied (null where it does not apply: a user
  /// without a valid grant, or not protected).
  private var childJSON: JSONValue {
    guard policy.children == .check else { return .null }
    let rule = childRule
    let applies = rule != nil && verdict.jurisdiction == .protected
    return .object([
      (
        "birth_date",
        facts.state == .valid ? facts.child.birthDateText.map(JSONValue.string) ?? .null : .null
      ),
      ("parental_consent", .bool(facts.state == .valid && facts.child.parentalConsent)),
      ("unknown_age", .string(policy.unknownAge.rawValue)),
      ("applies", .bool(applies)),
      ("age", rule?.age.map { .int(Int64($0)) } ?? .null),
      ("age_of_consent", rule.map { .int(Int64($0.requiredAge)) } ?? .null),
      ("age_from", rule.map { _ in .string(ageSources) } ?? .null),
      ("child_consent_invalid", .bool(applies && rule!.invalid)),
    ])
  }

  /// The children line of the text, nil when the rule is off.
  private var childText: String? {
    guard policy.children == .check else { return nil }
    guard let rule = childRule else {
      return "children (Art. 8): no valid grant in effect, the age rule does not apply"
    }
    let birth = facts.child.birthDateText ?? "unknown"
    let parental = facts.child.parentalConsent ? "yes" : "no"
    var line = "children (Art. 8): birth date \(birth), parental consent \(parental); "
    if let age = rule.age {
      line += "age \(age) on the grant's date"
    } else {
      line += "age unknown (--unknown-age \(policy.unknownAge.rawValue))"
    }
    line += "; age of digital consent \(rule.requiredAge) (\(ageSources))"
    if verdict.jurisdiction != .protected {
      line += "; not protected, so not applied"
    } else {
      line += rule.invalid ? " → child_consent_invalid" : " → the grant stands"
    }
    return line
  }

  /// The text for people.
  public var text: String {
    var lines: [String] = []
    lines.append("user \(userId), purpose \(policy.purpose), cutoff \(policy.cutoff.rfc3339)")
    if let indexPath {
      lines.append("from index \(indexPath) (it keeps each user's resolved state, not the events)")
    } else {
      lines.append("consent events (\(events.count)):")
    }
    for e in events {
      var parts = ["  \(e.file):\(e.line)", e.purpose, e.status, e.recordedAt]
      if let n = e.noticeVersion { parts.append("notice \(n)") }
      if let x = e.expiresAt, !x.isEmpty { parts.append("expires \(x)") }
      if let c = e.child {
        parts.append("born \(c.birthDateText ?? "unknown")")
        if c.parentalConsent { parts.append("parental consent") }
      }
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
      "consent state: \(Self.stateWord(facts.state)!)\(facts.ledgerError ? " (ledger error)" : "")"
        + (decidedAt.map { ", since \($0.rfc3339)" } ?? ""))
    lines.append("jurisdiction tags (\(tags.count)):")
    for t in tags {
      let place = t.line.map { "\(t.file):\($0)" } ?? t.file
      lines.append("  \(place)  \(t.country ?? "null")  → \(Self.signalWord(t.signal))")
    }
    lines.append(
      "jurisdiction from tags: \(jurisdictionWord) (a record's own country values add to this)")
    if let childText { lines.append(childText) }
    lines.append("decision: \(verdict.disposition.rawValue) (\(verdict.reason.code))")
    return lines.joined(separator: "\n")
  }
}
