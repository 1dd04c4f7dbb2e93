/// The jurisdiction a record was counted under, once it passed rows 1–5.
public enum JurisdictionCount: Int, Sendable, CaseIterable {
  case protected, notProtected, unknown, invalid

  public var key: String {
    switch self {
    case .protected: "protected"
    case .notProtected: "not_protected"
    case .unknown: "unknown"
    case .invalid: "invalid"
    }
  }
}

/// The outcome for one record.
public struct Verdict: Sendable, Equatable {
  public var reason: Reason
  /// Nil when the record stopped at rows 1–5.
  public var jurisdiction: JurisdictionCount?
}

/// Decides one record by SPEC §3.3, first matching row wins.
///
/// Holds a ``RecordScanner`` and scratch space, so it is a class; use one per thread. The
/// index and policy are shared, read-only values.
public final class RecordDecider {
  public let policy: Policy
  public let index: ConsentIndex
  private let scanner: RecordScanner
  private let countryFields: Range<Int>
  private let timeField: Int?
  private var idScratch: [UInt8] = []
  private var textScratch: [UInt8] = []

  public init(policy: Policy, index: ConsentIndex) {
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
    scanner = RecordScanner(pointers: pointers)
    idScratch.reserveCapacity(256)
    textScratch.reserveCapacity(256)
  }

  /// Decides a record: the line without its terminator (and without a BOM), not blank.
  public func decide(_ record: UnsafeRawBufferPointer) -> Verdict {
    if record.count > policy.maxRecordBytes { return Verdict(reason: .recordTooLarge) }
    // One pass validates both; only a failure needs the UTF-8 check to tell rows 2 and 3 apart.
    if !scanner.scan(record) {
      return Verdict(reason: UTF8Validation.isValid(record) ? .malformedJSON : .invalidUTF8)
    }
    if scanner.field(0).duplicate { return Verdict(reason: .duplicateKey) }
    for k in countryFields where scanner.field(k).duplicate {
      return Verdict(reason: .duplicateKey)
    }
    let base = record.baseAddress!
    let id = scanner.field(0)
    let facts: UserFacts
    switch id.kind {
    case .absent, .null:
      return Verdict(reason: .missingUserID)
    case .other:
      return Verdict(reason: .invalidUserID)
    case .integer:
      facts = index.facts(
        for: UnsafeRawBufferPointer(start: base + id.start, count: id.end - id.start))
    case .string:
      if id.start == id.end { return Verdict(reason: .missingUserID) }
      if id.escaped {
        idScratch.removeAll(keepingCapacity: true)
        let clean = JSONString.unescape(
          UnsafeRawBufferPointer(start: base + id.start, count: id.end - id.start), into: &idScratch
        )
        if !clean { return Verdict(reason: .invalidUserID) }
        if idScratch.isEmpty { return Verdict(reason: .missingUserID) }
        facts = idScratch.withUnsafeBytes { index.facts(for: $0) }
      } else {
        facts = index.facts(
          for: UnsafeRawBufferPointer(start: base + id.start, count: id.end - id.start))
      }
    }

    var signals = SignalSet()
    if !policy.protection.coversEveryone {
      for k in countryFields { signals.add(countrySignal(scanner.field(k), base)) }
    }
    return RecordDecider.decide(policy: policy, facts: facts, recordSignals: signals) {
      guard let timeField else { return .missing }
      let field = scanner.field(timeField)
      if field.duplicate { return .duplicate }
      return recordTime(field, base).map(RecordTime.at) ?? .missing
    }
  }

  /// A record's time, as rows 10–11 see it.
  public enum RecordTime: Sendable, Equatable {
    case at(Timestamp)
    case missing
    /// A key on the time path occurs twice: `duplicate_key`.
    case duplicate
  }

  /// Rows 6–13 of SPEC §3.3 for a record whose user id was read: its user's facts, the
  /// record's own country signals, and its time, asked for only when rows 10–11 need it.
  public static func decide(
    policy: Policy, facts: UserFacts, recordSignals: SignalSet,
    recordTime: () -> RecordTime
  ) -> Verdict {
    let isProtected: Bool
    let counted: JurisdictionCount
    if policy.protection.coversEveryone {
      isProtected = true
      counted = .protected
    } else {
      var signals = facts.tags
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
    if policy.consentCovers == .sinceGrant {
      switch recordTime() {
      case .duplicate: return Verdict(reason: .duplicateKey, jurisdiction: counted)
      case .missing: return Verdict(reason: .missingTimestamp, jurisdiction: counted)
      case .at(let time):
        if let grantedAt = facts.decidedAt, time < grantedAt {
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
