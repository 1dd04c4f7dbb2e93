import Foundation

/// `consentgate audit` (SPEC §11): every kept record of a corpus decided again with the
/// corpus's own policy, but new side files and a new cutoff; which would no longer be kept,
/// and why. Writes `audit.json` and `failing.jsonl` (path, line, reason: no record content,
/// no user id).
public struct Audit {
  public struct FileResult: Sendable {
    public var path: String
    public var records = 0
    public var stillLawful = 0
    public var failing: [Reason: Int] = [:]
    public var usersFailing = 0
  }

  public let corpus: Corpus
  public let policy: Policy
  public var consentFiles: [String] = []
  public var jurisdictionFiles: [String] = []
  /// A consent index (SPEC §9) used instead of the side files, opened with
  /// ``ConsentSources/openIndex(_:policy:consent:jurisdictions:)``.
  public var index: MappedIndex?

  public init(corpus: Corpus, policy: Policy) {
    self.corpus = corpus
    self.policy = policy
  }

  /// Decides every kept record and writes `audit.json` and `failing.jsonl` into `folder`
  /// (created if missing). Returns the audit's JSON and whether every record still passes.
  public func run(into folder: String) throws(CorpusFailure) -> (json: JSONValue, allPass: Bool) {
    let sources: ConsentSources
    do {
      sources = try ConsentSources.load(
        policy: policy, consent: consentFiles, jurisdictions: jurisdictionFiles, index: index)
    } catch {
      throw CorpusFailure(message: error.errors.map(\.description).joined(separator: "; "))
    }
    let out: OutputFolder
    let failingFile: OutputFile
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      out = try OutputFolder(path: folder)
      failingFile = try OutputFile(in: out, name: "failing.jsonl")
    } catch let error as OutputError {
      throw CorpusFailure(message: "cannot write \(error)")
    } catch {
      throw CorpusFailure(message: "cannot write \(folder)")
    }
    let decider = RecordDecider(policy: policy, index: sources.lookup)
    let ids = IdScratch()
    var results: [FileResult] = []
    var allFailingUsers: Set<[UInt8]> = []
    var line: [UInt8] = []
    do throws(CorpusFailure) {
      for path in corpus.keptFiles {
        var result = FileResult(path: path)
        var failingUsers: Set<[UInt8]> = []
        try Self.forEachRecord(in: "\(corpus.directory)/\(path)", policy: policy) {
          number, record throws(CorpusFailure) in
          ids.reset(capacity: record.count)
          let examined = decider.examine(record, ids: ids)
          let verdict =
            examined.early
            ?? decider.conclude(examined, record, facts: sources.lookup.facts(for: examined.id))
          result.records += 1
          if verdict.disposition == .keep {
            result.stillLawful += 1
            return
          }
          result.failing[verdict.reason, default: 0] += 1
          if examined.early == nil { failingUsers.insert(Array(examined.id)) }
          line.removeAll(keepingCapacity: true)
          line += #"{"path":"#.utf8
          JSONString.appendQuoted(path, to: &line)
          line += #","line":"#.utf8
          line += String(number).utf8
          line += #","reason":""#.utf8
          line += verdict.reason.code.utf8
          line += "\"}\n".utf8
          do {
            try failingFile.write(line)
          } catch {
            throw CorpusFailure(message: "cannot write \(error)")
          }
        }
        result.usersFailing = failingUsers.count
        allFailingUsers.formUnion(failingUsers)
        results.append(result)
      }
    } catch {
      failingFile.discard()
      throw error
    }
    let json = Self.json(
      corpus: corpus, policy: policy, sources: sources, results: results,
      usersFailing: allFailingUsers.count)
    do {
      _ = try failingFile.commit()
      try writeAtomically(json.bytes(sorted: false, indent: 0) + [0x0A], to: "audit.json", in: out)
    } catch {
      throw CorpusFailure(message: "cannot write \(error)")
    }
    return (json, results.allSatisfy { $0.stillLawful == $0.records })
  }

  /// Calls `body` with each record of a kept file and its line number. The file is read,
  /// inflated and framed on a thread of its own, a few blocks ahead, while this thread
  /// decides: the two halves take about as long as each other.
  static func forEachRecord(
    in path: String, policy: Policy,
    _ body: (Int, UnsafeRawBufferPointer) throws(CorpusFailure) -> Void
  ) throws(CorpusFailure) {
    let framer: BlockFramer
    do throws(InputError) {
      framer = try BlockFramer(
        path: path, blockTarget: 1 << 20, maxRecordBytes: policy.maxRecordBytes)
    } catch {
      throw CorpusFailure(message: "\(path): cannot be read (\(error))")
    }
    let queue = BlockQueue(capacity: 4)
    nonisolated(unsafe) let reading = framer
    let reader = Thread {
      while true {
        let next: Result<RecordBlock?, InputError>
        do throws(InputError) { next = .success(try reading.next()) } catch {
          next = .failure(error)
        }
        guard queue.push(next) else { return }
        if case .success(nil) = next { return }
        if case .failure = next { return }
      }
    }
    reader.start()
    defer { queue.stop() }
    while true {
      let next: RecordBlock?
      switch queue.pop() {
      case .success(let block): next = block
      case .failure(let error): throw CorpusFailure(message: "\(path): cannot be read (\(error))")
      }
      guard let block = next else { return }
      do {
        if block.oversized != nil {
          throw CorpusFailure(
            message: "\(path):\(block.firstLine): a record over max_record_bytes")
        }
        var failure: CorpusFailure?
        block.buffer.withUnsafeBytes { raw in
          guard let base = raw.baseAddress else { return }
          var start = 0
          var number = block.firstLine
          while start < raw.count && failure == nil {
            let lf = memchr(base + start, 0x0A, raw.count - start)
            let end = lf.map { base.distance(to: UnsafeRawPointer($0)) } ?? raw.count
            var contentEnd = end
            if lf != nil && contentEnd > start && raw[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let record = UnsafeRawBufferPointer(start: base + start, count: contentEnd - start)
            if !record.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
              do throws(CorpusFailure) {
                try body(number, record)
              } catch {
                failure = error
              }
            }
            number += 1
            start = end + 1
          }
        }
        if let failure { throw failure }
      }
    }
  }

  static func json(
    corpus: Corpus, policy: Policy, sources: ConsentSources, results: [FileResult],
    usersFailing: Int
  ) -> JSONValue {
    func sideFiles(_ files: [SideFileSummary]) -> JSONValue { .array(files.map(\.json)) }
    let records = results.reduce(0) { $0 + $1.records }
    let lawful = results.reduce(0) { $0 + $1.stillLawful }
    return .object([
      ("corpus_report_sha256", .string(corpus.reportSHA256)),
      ("cutoff", .string(policy.cutoff.rfc3339)),
      ("consent", sideFiles(sources.consentFiles)),
      ("jurisdictions", sideFiles(sources.jurisdictionFiles)),
      ("index", sources.index?.json ?? .null),
      (
        "files",
        .array(
          results.map { r in
            .object([
              ("path", .string(r.path)), ("records", .int(Int64(r.records))),
              ("still_lawful", .int(Int64(r.stillLawful))),
              (
                "failing",
                .object(
                  Reason.allCases.compactMap { reason in
                    r.failing[reason].map { (reason.code, .int(Int64($0))) }
                  })
              ),
              ("users_failing", .int(Int64(r.usersFailing))),
            ])
          })
      ),
      (
        "totals",
        .object([
          ("records", .int(Int64(records))), ("still_lawful", .int(Int64(lawful))),
          ("failing", .int(Int64(records - lawful))),
          ("users_failing", .int(Int64(usersFailing))),
        ])
      ),
    ])
  }
}

/// The blocks of one kept file between its reading thread and the deciding one: at most
/// `capacity` waiting. `@unchecked Sendable`: every access holds `condition`.
private final class BlockQueue: @unchecked Sendable {
  private let condition = NSCondition()
  private var items: [Result<RecordBlock?, InputError>] = []
  private var stopped = false
  private let capacity: Int

  init(capacity: Int) { self.capacity = capacity }

  /// Waits for room; false when the consumer has stopped (the reader then ends).
  func push(_ item: Result<RecordBlock?, InputError>) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while items.count >= capacity && !stopped { condition.wait() }
    if stopped { return false }
    items.append(item)
    condition.broadcast()
    return true
  }

  func pop() -> Result<RecordBlock?, InputError> {
    condition.lock()
    defer { condition.unlock() }
    while items.isEmpty { condition.wait() }
    condition.broadcast()
    return items.removeFirst()
  }

  /// The consumer is done (or failed): the reader stops at its next push.
  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
  }
}
