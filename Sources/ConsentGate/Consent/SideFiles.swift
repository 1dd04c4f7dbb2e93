// Over 300 lines for now: CSV loading, JSONL loading and explain tracing. Issue 23 splits it
// into those three files; it is left whole until then so the code moves only once.
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
  private let rules: ConsentRules
  private let purpose: [UInt8]
  public private(set) var index = ConsentIndex()
  public private(set) var consentFiles: [SideFileSummary] = []
  public private(set) var jurisdictionFiles: [SideFileSummary] = []
  public private(set) var errors: [SideFileError] = []
  private var fileNumber = 0

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

  private enum Kind { case ledger, tags }

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

  private var full: Bool { errors.count >= SideFileLoader.maxReportedErrors }

  private mutating func fail(_ file: String, _ line: Int?, _ message: String) {
    if !full { errors.append(SideFileError(file: file, line: line, message: message)) }
  }

  private mutating func load(_ path: String, _ kind: Kind) {
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

  private func describe(_ error: InputError) -> String {
    switch error {
    case .unreadable(_, let detail): detail
    case .truncated: "truncated gzip data"
    case .corrupt(_, let detail): "corrupt gzip data (\(detail))"
    }
  }

  // MARK: Rows, whatever the format

  /// A row's values, borrowed from the reader's buffer for the time of one ``apply``; nil
  /// where a column or key is missing.
  private struct Row {
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

  private static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
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

  private mutating func apply(_ row: Row, _ kind: Kind, _ file: String, _ users: inout Int) {
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
  private func judgeLedgerTexts(_ row: inout Row) {
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
  private func judgeChildTexts(
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
  private func readsChildColumns(_ row: Row) -> Bool {
    policy.children == .check && row.status.flatMap(ConsentStatus.init) == .granted
  }

  // MARK: CSV

  private mutating func loadCSV(
    _ file: String, _ reader: DecodingReader, _ kind: Kind, _ rows: inout Int,
    _ users: inout Int
  ) {
    let csv = CSVRowReader(reader: reader)
    do {
      guard try csv.next() else {
        fail(file, nil, "empty file: a header row is required")
        return
      }
      var columns: [String: Int] = [:]
      var duplicated: Set<String> = []
      for (k, r) in csv.fields.enumerated() {
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: csv.row[r]), as: UTF8.self)
        if columns[name] != nil { duplicated.insert(name) } else { columns[name] = k }
      }
      let required =
        kind == .ledger ? ["user_id", "purpose", "status", "recorded_at"] : ["user_id", "country"]
      var optional = kind == .ledger ? ["notice_version", "expires_at"] : []
      if kind == .ledger && policy.children == .check {
        optional += ["birth_date", "parental_consent"]
      }
      for name in required where columns[name] == nil {
        fail(file, csv.line, "missing required column \"\(name)\"")
        return
      }
      for name in required + optional where duplicated.contains(name) {
        fail(file, csv.line, "column \"\(name)\" appears more than once")
        return
      }
      let width = csv.fields.count
      // Column positions resolved once; -1 where an optional column is absent.
      let userCol = columns["user_id"]!
      let purposeCol = columns["purpose"] ?? -1
      let statusCol = columns["status"] ?? -1
      let recordedCol = columns["recorded_at"] ?? -1
      let noticeCol = columns["notice_version"] ?? -1
      let expiresCol = columns["expires_at"] ?? -1
      let countryCol = columns["country"] ?? -1
      let birthCol = policy.children == .check ? columns["birth_date"] ?? -1 : -1
      let parentalCol = policy.children == .check ? columns["parental_consent"] ?? -1 : -1
      while !full, try csv.next() {
        rows += 1
        guard csv.fields.count == width else {
          fail(file, csv.line, "wrong column count: \(csv.fields.count), header has \(width)")
          continue
        }
        let bytes = csv.row
        func field(_ k: Int) -> UnsafeRawBufferPointer? {
          k < 0 ? nil : UnsafeRawBufferPointer(rebasing: bytes[csv.fields[k]])
        }
        // The next row's slot is fetched while this one is handled: loading is otherwise one
        // memory miss per row.
        if runs == nil, let next = csv.peekField(userCol) { index.prefetch(next) }
        var row = Row()
        row.line = csv.line
        row.userId = field(userCol)!
        guard !row.userId.isEmpty else {
          fail(file, csv.line, "empty user_id")
          continue
        }
        switch kind {
        case .ledger:
          row.purpose = field(purposeCol)
          row.status = field(statusCol)
          row.recordedAtText = field(recordedCol)
          row.noticeVersion = field(noticeCol)
          row.expiresAtText = field(expiresCol)
          judgeLedgerTexts(&row)
          if readsChildColumns(row) {
            judgeChildTexts(&row, birthDate: field(birthCol), parental: field(parentalCol))
          }
        case .tags:
          let country = field(countryCol)!
          row.country = country
          row.signal = policy.protection.classify(country)
        }
        apply(row, kind, file, &users)
      }
    } catch {
      switch error {
      case .malformed(let line, let detail): fail(file, line, "malformed CSV: \(detail)")
      case .input(let error): fail(file, nil, "cannot read: \(describe(error))")
      }
    }
  }

  // MARK: JSONL

  /// Whether two top-level keys are equal after unescaping (any key, not only the columns
  /// read: parsers disagree on which duplicate wins).
  private func hasDuplicateKey(
    _ keys: [(start: Int, end: Int, escaped: Bool)], _ line: UnsafeRawBufferPointer
  ) -> Bool {
    guard keys.count > 1 else { return false }
    var seen: Set<[UInt8]> = []
    for key in keys {
      var text: [UInt8] = []
      let raw = UnsafeRawBufferPointer(rebasing: line[key.start..<key.end])
      if key.escaped {
        JSONString.unescape(raw, into: &text)
      } else {
        text = Array(raw)
      }
      if !seen.insert(text).inserted { return true }
    }
    return false
  }

  private mutating func loadJSONL(
    _ file: String, _ reader: DecodingReader, _ kind: Kind, _ rows: inout Int,
    _ users: inout Int
  ) throws(InputError) {
    var keys =
      kind == .ledger
      ? ["/user_id", "/purpose", "/status", "/recorded_at", "/notice_version", "/expires_at"]
      : ["/user_id", "/country"]
    if kind == .ledger && policy.children == .check {
      keys += ["/birth_date", "/parental_consent"]
    }
    let scanner = RecordScanner(pointers: keys.map { try! JSONPointer($0) })
    scanner.collectsTopLevelKeys = true
    let framer = BlockFramer(reader: reader, maxRecordBytes: 16 << 20)
    // Unescaped copies of escaped values, for one row at a time: never longer, together, than
    // the line they come from.
    var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    defer { scratch.deallocate() }
    var unescaped: [UInt8] = []
    while !full, let block = try framer.next() {
      if block.oversized != nil {
        if block.oversized!.isBlank { continue }
        fail(file, block.firstLine, "line is longer than 16 MiB")
        continue
      }
      var lineNumber = block.firstLine
      block.buffer.withUnsafeBytes { bytes in
        var start = 0
        while start < bytes.count && !full {
          var end = start
          while end < bytes.count && bytes[end] != 0x0A { end += 1 }
          defer {
            start = end + 1
            lineNumber += 1
          }
          var contentEnd = end
          if contentEnd > start && bytes[contentEnd - 1] == 0x0D && end < bytes.count {
            contentEnd -= 1
          }
          let content = UnsafeRawBufferPointer(rebasing: bytes[start..<contentEnd])
          if content.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
          rows += 1
          guard UTF8Validation.isValid(content) && scanner.scan(content) else {
            fail(file, lineNumber, "not a valid JSON object")
            continue
          }
          if scratch.count < content.count {
            scratch.deallocate()
            scratch = UnsafeMutableRawBufferPointer.allocate(
              byteCount: content.count, alignment: 8)
          }
          var used = 0
          func text(_ f: FieldValue) -> UnsafeRawBufferPointer {
            let source = UnsafeRawBufferPointer(rebasing: content[f.start..<f.end])
            if !f.escaped { return source }
            unescaped.removeAll(keepingCapacity: true)
            _ = JSONString.unescape(source, into: &unescaped)
            let copy = UnsafeMutableRawBufferPointer(
              rebasing: scratch[used..<(used + unescaped.count)])
            copy.copyBytes(from: unescaped)
            used += unescaped.count
            return UnsafeRawBufferPointer(copy)
          }
          var row = Row()
          row.line = lineNumber
          let id = scanner.field(0)
          if id.duplicate {
            fail(file, lineNumber, "duplicate key \"user_id\"")
            continue
          }
          switch id.kind {
          case .string, .integer: row.userId = text(id)
          case .absent, .null:
            fail(file, lineNumber, "missing user_id")
            continue
          default:
            fail(file, lineNumber, "user_id is neither a string nor an integer")
            continue
          }
          if row.userId.isEmpty {
            fail(file, lineNumber, "empty user_id")
            continue
          }
          for k in 1..<keys.count where scanner.field(k).duplicate {
            row.problem = "duplicate key \"\(keys[k].dropFirst())\""
          }
          if row.problem == nil && hasDuplicateKey(scanner.topLevelKeys, content) {
            row.problem = "duplicate key"
          }
          switch kind {
          case .ledger:
            // purpose and status must be strings.
            func string(_ k: Int, _ name: String) -> UnsafeRawBufferPointer? {
              let field = scanner.field(k)
              if field.kind == .string { return text(field) }
              row.problem =
                row.problem
                ?? (field.kind == .absent ? "missing \(name)" : "\(name) is not a string")
              return nil
            }
            row.purpose = string(1, "purpose")
            row.status = string(2, "status")
            let recorded = scanner.field(3)
            switch recorded.kind {
            case .string, .integer: row.recordedAtText = text(recorded)
            case .absent: row.problem = row.problem ?? "missing recorded_at"
            default: row.problem = row.problem ?? "recorded_at is not a valid time"
            }
            let notice = scanner.field(4)
            switch notice.kind {
            case .string, .integer: row.noticeVersion = text(notice)
            case .absent, .null: break
            default: row.problem = row.problem ?? "notice_version is not a string"
            }
            let expires = scanner.field(5)
            switch expires.kind {
            case .string, .integer: row.expiresAtText = text(expires)
            case .absent, .null: break
            default: row.problem = row.problem ?? "expires_at is not a valid time"
            }
            // A string time must be RFC 3339 or digits; an integer is Unix seconds.
            judgeLedgerTexts(&row)
            if readsChildColumns(row) {
              // JSONL also allows a JSON boolean or null for parental_consent, null for an
              // unknown birth date; any other type is a bad row.
              let birth = scanner.field(6)
              let parental = scanner.field(7)
              var birthText: UnsafeRawBufferPointer?
              var parentalText: UnsafeRawBufferPointer?
              var typeProblem: String?
              switch birth.kind {
              case .absent, .null: break
              case .string: birthText = text(birth)
              default: typeProblem = "birth_date is not a date (YYYY-MM-DD)"
              }
              switch parental.kind {
              case .absent, .null: break
              case .string: parentalText = text(parental)
              case .other where content[parental.start] == UInt8(ascii: "t"):
                parentalText = UnsafeRawBufferPointer(
                  rebasing: content[parental.start..<(parental.start + 4)])
              case .other where content[parental.start] == UInt8(ascii: "f"):
                parentalText = UnsafeRawBufferPointer(
                  rebasing: content[parental.start..<(parental.start + 5)])
              default: typeProblem = typeProblem ?? "parental_consent is not true or false"
              }
              if let typeProblem {
                row.problem = row.problem ?? typeProblem
              } else {
                judgeChildTexts(&row, birthDate: birthText, parental: parentalText)
              }
            }
          case .tags:
            let country = scanner.field(1)
            switch country.kind {
            case .absent:
              fail(file, lineNumber, "missing country")
              continue
            case .null: row.signal = .none
            case .string:
              // A country with a lone surrogate escape is no code at all.
              var clean = true
              if country.escaped {
                var sink: [UInt8] = []
                clean = JSONString.unescape(
                  UnsafeRawBufferPointer(rebasing: content[country.start..<country.end]),
                  into: &sink)
              }
              let value = text(country)
              row.country = value
              row.signal = clean ? policy.protection.classify(value) : .invalid
            default: row.signal = .invalid
            }
          }
          apply(row, kind, file, &users)
        }
      }
    }
  }
}
