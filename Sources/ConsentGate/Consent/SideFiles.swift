// Over 300 lines on purpose: the loader's types and the rules every row goes through
// (apply, the ledger and children checks) stay together; the two formats are in
// SideFilesCSV.swift and SideFilesJSONL.swift.
#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One problem in a ledger or tag file, by file and line. Never holds field values beyond
/// the column name: ledger rows are personal data too.
public struct SideFileError: Error, Sendable, Equatable, CustomStringConvertible {
  public var file: String
  public var line: Int?
  public var message: String

  public var description: String {
    if let line { return "\(file):\(line): \(message)" }
    return "\(file): \(message)"
  }
}

/// The side files could not be loaded: the run stops before any output (exit 2).
public struct SideFileFailure: Error, Sendable {
  /// The first errors found, at most ``SideFileLoader/maxReportedErrors``.
  public var errors: [SideFileError]
}

/// What the report says of one ledger or tag file.
public struct SideFileSummary: Sendable, Equatable {
  public var path: String
  public var sha256: String
  public var rows: Int
  public var users: Int

  /// As reports and audits write it.
  public var json: JSONValue {
    .object([
      ("path", .string(path)), ("sha256", .string(sha256)), ("rows", .int(Int64(rows))),
      ("users", .int(Int64(users))),
    ])
  }
}

/// One ledger row about the user `explain` asks for.
public struct ExplainedEvent: Sendable {
  public var file: String
  public var line: Int
  public var purpose: String
  public var status: String
  public var recordedAt: String
  public var noticeVersion: String?
  public var expiresAt: String?
  /// The state it stands for at the cutoff, nil when it is after the cutoff, of another
  /// purpose, or bad.
  public var state: ConsentState?
  public var problem: String?
  /// The birth date and parental consent a granted row gave, under `--children check`.
  public var child: ChildFacts?
}

/// One tag row about the user `explain` asks for.
public struct ExplainedTag: Sendable {
  public var file: String
  /// nil for a tag an index recorded (it keeps no lines).
  public var line: Int?
  public var country: String?
  public var signal: CountrySignal
}

/// Loads consent ledgers and jurisdiction tags into a ``ConsentIndex`` (SPEC §2.4, §2.5,
/// §7 "Ledger rows"). Each event is judged at the cutoff as it is read, so the index holds
/// one resolved state per user, never the events.
public struct SideFileLoader {
  public static let maxReportedErrors = 10

  public let policy: Policy
  let rules: ConsentRules
  let purpose: [UInt8]
  public private(set) var index = ConsentIndex()
  public private(set) var consentFiles: [SideFileSummary] = []
  public private(set) var jurisdictionFiles: [SideFileSummary] = []
  public private(set) var errors: [SideFileError] = []
  var fileNumber = 0

  /// When set, rows go to these on-disk runs instead of the in-memory index (``IndexBuilder``).
  var runs: IndexRuns?

  /// When set, the rows about this user are collected for `explain`.
  public var explainUser: [UInt8]?
  public private(set) var explainedEvents: [ExplainedEvent] = []
  public private(set) var explainedTags: [ExplainedTag] = []

  public init(policy: Policy) {
    self.policy = policy
    rules = ConsentRules(policy: policy)
    purpose = Array(policy.purpose.utf8)
  }

  enum Kind { case ledger, tags }

  /// Loads every file; throws with the first errors if any is fatal.
  public mutating func load(consent: [String], jurisdictions: [String]) throws(SideFileFailure) {
    for path in consent where errors.count < SideFileLoader.maxReportedErrors {
      load(path, .ledger)
    }
    for path in jurisdictions where errors.count < SideFileLoader.maxReportedErrors {
      load(path, .tags)
    }
    if !errors.isEmpty { throw SideFileFailure(errors: errors) }
    index.compact()
  }

  var full: Bool { errors.count >= SideFileLoader.maxReportedErrors }

  mutating func fail(_ file: String, _ line: Int?, _ message: String) {
    if !full { errors.append(SideFileError(file: file, line: line, message: message)) }
  }

  mutating func load(_ path: String, _ kind: Kind) {
    let name = path
    fileNumber += 1
    let reader: DecodingReader
    do {
      reader = try DecodingReader(path: path)
    } catch {
      fail(name, nil, "cannot read: \(describe(error))")
      return
    }
    let source = reader.source
    var rows = 0
    var users = 0
    do {
      // JSONL when the first character after any BOM and blank lines is `{`.
      var head: [UInt8] = []
      let probe = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
      defer { probe.deallocate() }
      var firstSignificant: UInt8?
      while firstSignificant == nil {
        let n = try reader.read(into: probe)
        if n == 0 { break }
        head.append(contentsOf: probe[0..<n])
        var i = head.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while i < head.count, [0x20, 0x09, 0x0D, 0x0A].contains(head[i]) { i += 1 }
        if i < head.count { firstSignificant = head[i] }
      }
      reader.unread(head)
      guard firstSignificant != nil else {
        fail(name, nil, "empty file: a header row is required")
        return
      }
      if firstSignificant == UInt8(ascii: "{") {
        try loadJSONL(name, reader, kind, &rows, &users)
      } else {
        loadCSV(name, reader, kind, &rows, &users)
      }
    } catch {
      fail(name, nil, "cannot read: \(describe(error))")
      return
    }
    source.drain()
    let summary = SideFileSummary(path: path, sha256: source.sha256Hex(), rows: rows, users: users)
    switch kind {
    case .ledger: consentFiles.append(summary)
    case .tags: jurisdictionFiles.append(summary)
    }
  }

  func describe(_ error: InputError) -> String {
    switch error {
    case .unreadable(_, let detail): detail
    case .truncated: "truncated gzip data"
    case .corrupt(_, let detail): "corrupt gzip data (\(detail))"
    }
  }

  // MARK: Rows, whatever the format

  /// A row's values, borrowed from the reader's buffer for the time of one ``apply``; nil
  /// where a column or key is missing.
  struct Row {
    var line = 0
    var userId = UnsafeRawBufferPointer(start: nil, count: 0)
    var purpose: UnsafeRawBufferPointer?
    var status: UnsafeRawBufferPointer?
    var recordedAt: Timestamp?
    var recordedAtText: UnsafeRawBufferPointer?
    var noticeVersion: UnsafeRawBufferPointer?
    var expiresAt: Timestamp?
    var expiresAtText: UnsafeRawBufferPointer?
    var country: UnsafeRawBufferPointer?
    /// `birth_date` and `parental_consent` of a granted row, under `--children check`.
    var child = ChildFacts.none
    /// Why the row is bad (a lenient-able error), if it is.
    var problem: String?
    var signal = CountrySignal.none
  }

  static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
    a.count == b.count
      && (a.count == 0
        || b.withUnsafeBytes { memcmp($0.baseAddress!, a.baseAddress!, a.count) == 0 })
  }

  /// What one row does to its user.
  enum Effect {
    /// Names the user, nothing more (another purpose, after the cutoff, no country).
    case mention
    case offer(ConsentState, Timestamp, ChildFacts)
    case ledgerError
    /// A tag signal; `country` is the tag's text (for the index, which resolves signals
    /// against each run's protection set).
    case tag(CountrySignal, country: UnsafeRawBufferPointer?)
  }

  mutating func apply(_ row: Row, _ kind: Kind, _ file: String, _ users: inout Int) {
    var effect = Effect.mention
    var state: ConsentState?
    switch kind {
    case .tags:
      if let problem = row.problem, !policy.lenientLedger {
        fail(file, row.line, problem)
      } else {
        effect = .tag(row.problem == nil ? row.signal : .invalid, country: row.country)
      }
    case .ledger:
      if let problem = row.problem {
        if policy.lenientLedger {
          effect = .ledgerError
        } else {
          fail(file, row.line, problem)
        }
      } else if let p = row.purpose, SideFileLoader.equal(p, purpose),
        let recordedAt = row.recordedAt, let status = row.status.flatMap(ConsentStatus.init)
      {
        state = rules.state(
          status: status, recordedAt: recordedAt, expiresAt: row.expiresAt,
          noticeVersion: row.noticeVersion)
        if let state { effect = .offer(state, recordedAt, row.child) }
      }
    }
    if let runs {
      runs.add(row.userId, file: fileNumber, effect)
    } else {
      let (e, first) = index.insert(row.userId, file: fileNumber)
      if first { users += 1 }
      switch effect {
      case .mention: break
      case .offer(let state, let time, let child):
        index.offer(e, state: state, at: time, child: child, unknownAge: policy.unknownAge)
      case .ledgerError: index.markLedgerError(e)
      case .tag(let signal, let country):
        // Read only under `--children check`, but kept always: the index keeps the codes,
        // so both sources give equal facts.
        let bit = signal == .protected ? policy.protection.ageBit(country!) : 0
        index.addTag(e, signal, ageBit: bit)
      }
    }
    guard let explainUser, SideFileLoader.equal(row.userId, explainUser) else { return }
    func text(_ b: UnsafeRawBufferPointer?) -> String? {
      b.map { String(decoding: $0, as: UTF8.self) }
    }
    switch kind {
    case .tags:
      explainedTags.append(
        ExplainedTag(
          file: file, line: row.line, country: text(row.country),
          signal: row.problem == nil ? row.signal : .invalid))
    case .ledger:
      explainedEvents.append(
        ExplainedEvent(
          file: file, line: row.line, purpose: text(row.purpose) ?? "",
          status: text(row.status) ?? "", recordedAt: text(row.recordedAtText) ?? "",
          noticeVersion: text(row.noticeVersion), expiresAt: text(row.expiresAtText),
          state: state, problem: row.problem,
          child: readsChildColumns(row) && row.problem == nil ? row.child : nil))
    }
  }

  /// Fills status, times and notice from text fields, noting the first problem.
  func judgeLedgerTexts(_ row: inout Row) {
    if let s = row.status, ConsentStatus(s) == nil {
      row.problem = row.problem ?? "unknown status (expected granted, withdrawn or objected)"
    }
    if let t = row.recordedAtText {
      row.recordedAt = Timestamp.parseLedgerText(t)
      if row.recordedAt == nil { row.problem = row.problem ?? "recorded_at is not a valid time" }
    }
    if let t = row.expiresAtText, !t.isEmpty {
      row.expiresAt = Timestamp.parseLedgerText(t)
      if row.expiresAt == nil { row.problem = row.problem ?? "expires_at is not a valid time" }
    }
    if row.noticeVersion?.isEmpty == true { row.noticeVersion = nil }
  }

  /// The children columns of a granted row under `--children check` (SPEC §13.2), given as
  /// text (nil: column absent). A value that is not a date, or a date after the row's
  /// `recorded_at`, makes the row bad.
  func judgeChildTexts(
    _ row: inout Row, birthDate: UnsafeRawBufferPointer?, parental: UnsafeRawBufferPointer?
  ) {
    var birthDay: Int?
    if let b = birthDate, !b.isEmpty {
      birthDay = ChildFacts.parseDate(b)
      if birthDay == nil {
        row.problem = row.problem ?? "birth_date is not a date (YYYY-MM-DD)"
        return
      }
    }
    var consent = false
    if let p = parental {
      guard let v = ChildFacts.parseParental(p) else {
        row.problem = row.problem ?? "parental_consent is not true or false"
        return
      }
      consent = v
    }
    if let birthDay, let recordedAt = row.recordedAt, birthDay > ChildFacts.day(of: recordedAt) {
      row.problem = row.problem ?? "birth_date is after the date of recorded_at"
      return
    }
    row.child = ChildFacts(birthDay: birthDay, parental: consent)
  }

  /// Whether the children columns of `row` are read: a granted row under `--children check`.
  func readsChildColumns(_ row: Row) -> Bool {
    policy.children == .check && row.status.flatMap(ConsentStatus.init) == .granted
  }

}
