/// Decides one record by SPEC §3.3, first matching row wins.
///
/// Holds a ``RecordScanner`` and scratch space, so it is a class; use one per thread. The
/// index and policy are shared, read-only values.
public final class RecordDecider {
  public let policy: Policy
  public let index: UserLookup
  let scanner: RecordScanner
  private let countryFields: Range<Int>
  private let timeField: Int?
  /// The `--embedded-user-path` pointers (SPEC §13.1), after every other.
  let embeddedFields: Range<Int>
  /// The embedded people's ids of the last ``examine(_:ids:)``, in document order: valid
  /// until the `IdScratch` it was given is reset.
  public internal(set) var embeddedIds: [UnsafeRawBufferPointer] = []
  private let idScratch = IdScratch()
  /// One thread's scratch (a decider is never shared): exclusivity check off.
  @exclusivity(unchecked) var textScratch: [UInt8] = []

  /// A decider over a table loaded from side files.
  public convenience init(policy: Policy, index: ConsentIndex) {
    self.init(policy: policy, index: .loaded(index))
  }

  public init(policy: Policy, index: UserLookup) {
    self.policy = policy
    self.index = index
    var pointers = [policy.userIdPath]
    // Under `all` no country path is consulted: it cannot cause duplicate_key.
    if !policy.protection.coversEveryone { pointers += policy.countryPaths }
    countryFields = 1..<pointers.count
    // The time path is consulted only where rows 10–11 need it.
    if policy.consentCovers == .sinceGrant {
      timeField = pointers.count
      pointers.append(policy.timePath)
    } else {
      timeField = nil
    }
    embeddedFields = pointers.count..<(pointers.count + policy.embeddedUserPaths.count)
    pointers += policy.embeddedUserPaths
    scanner = RecordScanner(pointers: pointers)
    embeddedIds.reserveCapacity(policy.embeddedUserPaths.isEmpty ? 0 : 16)
    textScratch.reserveCapacity(256)
  }

  /// What the first pass over a record learned, before its user is looked up.
  public struct Examined {
    /// A verdict reached without the index (SPEC §3.3 rows 1–5), or nil.
    public var early: Verdict?
    /// The canonical user id: bytes of the record, or of an ``IdScratch`` when it had
    /// escapes.
    public var id = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The record's own country signals.
    public var signals = SignalSet()
    /// The record time's field, for rows 10–11.
    public var time = FieldValue()
    /// How many embedded people the record names (their ids: ``RecordDecider/embeddedIds``).
    public var embeddedCount = 0
    /// What makes the record's embedded people unusable whoever they are.
    public var embeddedFault = EmbeddedFault.none

    init(early: Verdict) { self.early = early }
    init() {}
  }

  /// Decides a record: the line without its terminator (and without a BOM), not blank.
  public func decide(_ record: UnsafeRawBufferPointer) -> Verdict {
    idScratch.reset(capacity: record.count)
    let examined = examine(record, ids: idScratch)
    if let early = examined.early { return early }
    return conclude(examined, record, facts: index.facts(for: examined.id))
  }

  /// The first half of ``decide(_:)``: rows 1–5, the user id, the record's signals.
  ///
  /// An escaped id is unescaped into `ids` and `id` points there, valid until `ids` is
  /// reset.
  public func examine(_ record: UnsafeRawBufferPointer, ids: IdScratch) -> Examined {
    if record.count > policy.maxRecordBytes {
      return Examined(early: Verdict(reason: .recordTooLarge))
    }
    // One pass validates both; only a failure needs the UTF-8 check to tell rows 2 and 3 apart.
    if !scanner.scan(record) {
      return Examined(
        early: Verdict(reason: UTF8Validation.isValid(record) ? .malformedJSON : .invalidUTF8))
    }
    if scanner.field(0).duplicate { return Examined(early: Verdict(reason: .duplicateKey)) }
    for k in countryFields where scanner.field(k).duplicate {
      return Examined(early: Verdict(reason: .duplicateKey))
    }
    let base = record.baseAddress!
    let id = scanner.field(0)
    var examined = Examined()
    switch id.kind {
    case .absent, .null:
      return Examined(early: Verdict(reason: .missingUserID))
    case .other:
      return Examined(early: Verdict(reason: .invalidUserID))
    case .integer:
      examined.id = UnsafeRawBufferPointer(start: base + id.start, count: id.end - id.start)
    case .string:
      if id.start == id.end { return Examined(early: Verdict(reason: .missingUserID)) }
      let raw = UnsafeRawBufferPointer(start: base + id.start, count: id.end - id.start)
      if id.escaped {
        textScratch.removeAll(keepingCapacity: true)
        if !JSONString.unescape(raw, into: &textScratch) {
          return Examined(early: Verdict(reason: .invalidUserID))
        }
        if textScratch.isEmpty { return Examined(early: Verdict(reason: .missingUserID)) }
        examined.id = ids.append(textScratch)
      } else {
        examined.id = raw
      }
    }
    if !policy.protection.coversEveryone {
      for k in countryFields {
        let signal = countrySignal(scanner.field(k), base)
        examined.signals.add(signal)
        if signal == .protected && policy.children == .check {
          examined.signals.ages |= ageBit(scanner.field(k), base)
        }
      }
    }
    if let timeField { examined.time = scanner.field(timeField) }
    if !embeddedFields.isEmpty { examineEmbedded(&examined, base, ids: ids) }
    return examined
  }

  /// The second half of ``decide(_:)``: rows 6–13 for an examined record and its user's
  /// facts, its embedded people looked up one by one in ``embeddedIds`` (so straight after
  /// the ``examine(_:ids:)`` that filled them).
  public func conclude(_ examined: Examined, _ record: UnsafeRawBufferPointer, facts: UserFacts)
    -> Verdict
  {
    conclude(examined, record, facts: facts) { index.facts(for: embeddedIds[$0]) }
  }

  /// Rows 6–13 with the facts of embedded person `k` from `embedded(k)`.
  public func conclude(
    _ examined: Examined, _ record: UnsafeRawBufferPointer, facts: UserFacts,
    embedded: (Int) -> UserFacts
  ) -> Verdict {
    if let early = examined.early { return early }
    let verdict = RecordDecider.decide(
      policy: policy, facts: facts, recordSignals: examined.signals,
      grantedAt: { index.decidedAt(facts) }
    ) {
      guard timeField != nil else { return .missing }
      let field = examined.time
      if field.duplicate { return .duplicate }
      return recordTime(field, record.baseAddress!).map(RecordTime.at) ?? .missing
    }
    // Embedded people are consulted only for a record that would otherwise be kept.
    guard !embeddedFields.isEmpty, verdict.disposition == .keep else { return verdict }
    return judgeEmbedded(examined, author: verdict, embedded: embedded)
  }

  /// A record's time, as rows 10–11 see it.
  public enum RecordTime: Sendable, Equatable {
    case at(Timestamp)
    case missing
    /// A key on the time path occurs twice: `duplicate_key`.
    case duplicate
  }

  /// Rows 6–13 of SPEC §3.3 for a record whose user id was read: its user's facts, the
  /// record's own country signals, and the grant's and the record's times, asked for only
  /// when rows 9–11 need them. An embedded person (SPEC §13.1) is judged with no record
  /// signals and `timeRows` false: rows 10–11 are not applied.
  public static func decide(
    policy: Policy, facts: UserFacts, recordSignals: SignalSet,
    grantedAt: () -> Timestamp?, timeRows: Bool = true, recordTime: () -> RecordTime
  ) -> Verdict {
    let isProtected: Bool
    let counted: JurisdictionCount
    var signals = facts.tags
    if policy.protection.coversEveryone {
      isProtected = true
      counted = .protected
    } else {
      signals.formUnion(recordSignals)
      switch Jurisdiction(signals) {
      case .invalid:
        return Verdict(reason: .invalidCountry, jurisdiction: .invalid)
      case .protected:
        isProtected = true
        counted = .protected
      case .notProtected:
        isProtected = false
        counted = .notProtected
      case .unknown:
        switch policy.unknownJurisdiction {
        case .quarantine: return Verdict(reason: .unknownJurisdiction, jurisdiction: .unknown)
        case .protect:
          isProtected = true
          counted = .protected
        case .allow:
          isProtected = false
          counted = .notProtected
        }
      }
    }

    if facts.ledgerError { return Verdict(reason: .consentLedgerError, jurisdiction: counted) }
    if facts.state == .objected && (isProtected || policy.objections == .everywhere) {
      return Verdict(reason: .objected, jurisdiction: counted)
    }
    guard isProtected else { return Verdict(reason: .notProtected, jurisdiction: counted) }
    if let invalid = Reason(invalidConsent: facts.state) {
      return Verdict(reason: invalid, jurisdiction: counted)
    }
    if policy.children == .check {
      // Under `all` the age is the default whatever the codes (SPEC §13.2).
      let outcome = ChildRuleOutcome(
        child: facts.child, grantedAt: grantedAt(),
        ages: policy.protection.coversEveryone ? 0 : signals.ages, unknownAge: policy.unknownAge)
      if outcome.invalid { return Verdict(reason: .childConsentInvalid, jurisdiction: counted) }
    }
    if policy.consentCovers == .sinceGrant && timeRows {
      switch recordTime() {
      case .duplicate: return Verdict(reason: .duplicateKey, jurisdiction: counted)
      case .missing: return Verdict(reason: .missingTimestamp, jurisdiction: counted)
      case .at(let time):
        if let grantedAt = grantedAt(), time < grantedAt {
          return Verdict(reason: .predatesConsent, jurisdiction: counted)
        }
      }
    }
    return Verdict(reason: .consented, jurisdiction: counted)
  }

  private func countrySignal(_ field: FieldValue, _ base: UnsafeRawPointer) -> CountrySignal {
    switch field.kind {
    case .absent, .null: return .none
    case .integer, .other: return .invalid
    case .string:
      let raw = UnsafeRawBufferPointer(start: base + field.start, count: field.end - field.start)
      if !field.escaped { return policy.protection.classify(raw) }
      textScratch.removeAll(keepingCapacity: true)
      guard JSONString.unescape(raw, into: &textScratch) else { return .invalid }
      return textScratch.withUnsafeBytes { policy.protection.classify($0) }
    }
  }

  /// The age-schedule bit of a protected country field (``SignalSet/ages``).
  private func ageBit(_ field: FieldValue, _ base: UnsafeRawPointer) -> UInt8 {
    let raw = UnsafeRawBufferPointer(start: base + field.start, count: field.end - field.start)
    if !field.escaped { return policy.protection.ageBit(raw) }
    textScratch.removeAll(keepingCapacity: true)
    _ = JSONString.unescape(raw, into: &textScratch)
    return textScratch.withUnsafeBytes { policy.protection.ageBit($0) }
  }

  /// A record time: an RFC 3339 string or a JSON integer (Unix seconds).
  private func recordTime(_ field: FieldValue, _ base: UnsafeRawPointer) -> Timestamp? {
    let raw = UnsafeRawBufferPointer(start: base + field.start, count: field.end - field.start)
    switch field.kind {
    case .integer: return Timestamp.parseUnixDigits(raw)
    case .string:
      if !field.escaped { return Timestamp.parseRFC3339(raw) }
      textScratch.removeAll(keepingCapacity: true)
      guard JSONString.unescape(raw, into: &textScratch) else { return nil }
      return textScratch.withUnsafeBytes { Timestamp.parseRFC3339($0) }
    default: return nil
    }
  }
}
