import Testing

@testable import ConsentGate

/// Loads side files from text; returns the loader or the fatal errors.
func load(
  ledger: [UInt8]? = nil, tags: [UInt8]? = nil, policy: Policy? = nil, ledgerName: String = "ledger"
) throws -> Result<SideFileLoader, SideFileFailure> {
  let dir = temporaryFolder("load")
  var loader = SideFileLoader(policy: try policy ?? makePolicy())
  let consent = ledger.map { [writeFile(dir + "/" + ledgerName, $0)] } ?? []
  let juris = tags.map { [writeFile(dir + "/tags", $0)] } ?? []
  do {
    try loader.load(consent: consent, jurisdictions: juris)
    return .success(loader)
  } catch {
    return .failure(error)
  }
}

func facts(_ loader: SideFileLoader, _ id: String) -> UserFacts {
  Array(id.utf8).withUnsafeBytes { loader.index.facts(for: $0) }
}

let header = "user_id,purpose,status,recorded_at\n"

@Suite struct LedgerParsingTests {
  @Test func quotedFieldsWithCommasQuotesAndNewlines() throws {
    let csv =
      header + "\"a,b\",ai_training,granted,2024-01-01T00:00:00Z\n"
      + "\"say \"\"hi\"\"\",ai_training,granted,2024-01-01T00:00:00Z\n"
      + "\"multi\nline\",ai_training,granted,2024-01-01T00:00:00Z\n"
    let loader = try load(ledger: Array(csv.utf8)).get()
    #expect(facts(loader, "a,b").state == .valid)
    #expect(facts(loader, "say \"hi\"").state == .valid)
    #expect(facts(loader, "multi\nline").state == .valid)
    #expect(loader.consentFiles[0].rows == 3)
    #expect(loader.consentFiles[0].users == 3)
  }

  @Test func bomBlankLinesCRLFAndColumnOrder() throws {
    let csv =
      "\u{FEFF}status,recorded_at,extra,purpose,user_id\r\n\r\n"
      + "granted,2024-01-01T00:00:00Z,x,ai_training,u1\r\n   \r\n"
      + "withdrawn,2024-02-01T00:00:00Z,y,ai_training,u2\r\n"
    let loader = try load(ledger: Array(csv.utf8)).get()
    #expect(facts(loader, "u1").state == .valid)
    #expect(facts(loader, "u2").state == .withdrawn)
    #expect(loader.consentFiles[0].rows == 2)
  }

  @Test func idsAreExactTextNotTrimmed() throws {
    let csv = header + " u1,ai_training,granted,2024-01-01T00:00:00Z\n"
    let loader = try load(ledger: Array(csv.utf8)).get()
    #expect(facts(loader, "u1").state == .noConsent)
    #expect(facts(loader, " u1").state == .valid)
  }

  @Test func gzippedLedger() throws {
    let csv = header + "u1,ai_training,granted,2024-01-01T00:00:00Z\n"
    let loader = try load(ledger: gzipMember(Array(csv.utf8))).get()
    #expect(facts(loader, "u1").state == .valid)
  }

  @Test func jsonlLedgerWithIntegerIdsAndTimes() throws {
    let jsonl = """

      {"user_id":123,"purpose":"ai_training","status":"granted","recorded_at":1704067200,"notice_version":2}
      {"user_id":"u2","purpose":"ai_training","status":"granted","recorded_at":"2024-01-01T00:00:00Z","expires_at":null}
      {"user_id":"u3","purpose":"ai_training","status":"granted","recorded_at":"1704067200","expires_at":"2024-02-01T00:00:00Z"}
      """
    let p = try makePolicy { $0.noticeVersions = ["2"] }
    let loader = try load(ledger: Array(jsonl.utf8), policy: p).get()
    #expect(facts(loader, "123").state == .valid)
    #expect(facts(loader, "u2").state == .noticeOutdated)
    #expect(facts(loader, "u3").state == .expired)
  }

  @Test(arguments: [
    "u1,ai_training,maybe,2024-01-01T00:00:00Z\n", "u1,ai_training, granted,2024-01-01T00:00:00Z\n",
    "u1,ai_training,granted,yesterday\n", "u1,ai_training,granted,2024-01-01 00:00:00Z\n",
  ])
  func badRowIsFatalByDefault(_ row: String) throws {
    guard case .failure(let f) = try load(ledger: Array((header + row).utf8)) else {
      Issue.record("bad row accepted")
      return
    }
    #expect(f.errors.first?.line == 2)
    #expect(f.errors.first?.file.hasSuffix("ledger") == true)
  }

  @Test func fatalErrorsNameTheFirstTenRows() throws {
    var csv = header
    for i in 0..<15 { csv += "u\(i),ai_training,nope,2024-01-01T00:00:00Z\n" }
    guard case .failure(let f) = try load(ledger: Array(csv.utf8)) else {
      Issue.record("accepted")
      return
    }
    #expect(f.errors.count == 10)
    #expect(f.errors.map { $0.line! } == Array(2...11))
  }

  @Test func lenientLedgerMarksTheUserForEveryPurpose() throws {
    let csv =
      header + "u1,ai_training,granted,2024-01-01T00:00:00Z\nu1,ads,maybe,2024-01-01T00:00:00Z\n"
    let p = try makePolicy { $0.lenientLedger = true }
    let loader = try load(ledger: Array(csv.utf8), policy: p).get()
    #expect(facts(loader, "u1").ledgerError)
  }

  @Test func malformedWithdrawalNeverBecomesConsent() throws {
    let csv =
      header + "u1,ai_training,granted,2024-01-01T00:00:00Z\nu1,ai_training,withdrawn,not-a-time\n"
    guard case .failure = try load(ledger: Array(csv.utf8)) else {
      Issue.record("malformed withdrawal accepted")
      return
    }
    let lenient = try load(
      ledger: Array(csv.utf8), policy: try makePolicy { $0.lenientLedger = true }
    ).get()
    #expect(facts(lenient, "u1").ledgerError)
  }

  @Test(arguments: [
    "u1,ai_training,granted\n",  // wrong column count
    ",ai_training,granted,2024-01-01T00:00:00Z\n",  // empty user id
  ])
  func structuralErrorsAreFatalEvenWhenLenient(_ row: String) throws {
    let p = try makePolicy { $0.lenientLedger = true }
    guard case .failure = try load(ledger: Array((header + row).utf8), policy: p) else {
      Issue.record("accepted")
      return
    }
  }

  @Test(arguments: [
    "", "\n\n", "user_id,purpose,status\nu,ai_training,granted\n",
    "user_id,purpose,status,recorded_at,status\n", "user_id,purpose,status,recorded_at\n\"open,x\n",
  ])
  func fileLevelErrorsAreFatal(_ text: String) throws {
    guard case .failure = try load(ledger: Array(text.utf8)) else {
      Issue.record("accepted: \(text)")
      return
    }
  }

  @Test func headerWithoutRowsIsFine() throws {
    let loader = try load(ledger: Array(header.utf8)).get()
    #expect(loader.consentFiles[0].rows == 0)
  }

  @Test func unreadableLedgerIsFatal() throws {
    var loader = SideFileLoader(policy: try makePolicy())
    #expect(throws: SideFileFailure.self) {
      try loader.load(consent: ["/nonexistent/ledger.csv"], jurisdictions: [])
    }
  }

  @Test(arguments: [
    #"{"user_id":"u1","user_id":"u2","purpose":"ai_training","status":"granted","recorded_at":1}"#,
    #"{"user_id":true,"purpose":"ai_training","status":"granted","recorded_at":1}"#,
    #"{"purpose":"ai_training","status":"granted","recorded_at":1}"#,
    #"{"user_id":"u1","purpose":"ai_training","status":"granted","recorded_at":1"#,
  ])
  func jsonlStructuralErrorsAreFatalEvenWhenLenient(_ line: String) throws {
    let p = try makePolicy { $0.lenientLedger = true }
    guard case .failure = try load(ledger: Array(line.utf8), policy: p) else {
      Issue.record("accepted: \(line)")
      return
    }
  }

  @Test(arguments: [
    #"{"user_id":"u1","purpose":"ai_training","status":"granted","status":"granted","recorded_at":1}"#,
    #"{"user_id":"u1","purpose":5,"status":"granted","recorded_at":1}"#,
    #"{"user_id":"u1","purpose":"ai_training","status":"granted"}"#,
    #"{"user_id":"u1","purpose":"ai_training","status":"granted","recorded_at":1.5}"#,
    #"{"user_id":"u1","purpose":"ai_training","status":"granted","recorded_at":1,"notice_version":true}"#,
    #"{"user_id":"u1","purpose":"ai_training","status":"granted","recorded_at":1,"note":1,"note":2}"#,
  ])
  func jsonlBadRowsAreLenientable(_ line: String) throws {
    guard case .failure = try load(ledger: Array(line.utf8)) else {
      Issue.record("accepted: \(line)")
      return
    }
    let p = try makePolicy { $0.lenientLedger = true }
    #expect(facts(try load(ledger: Array(line.utf8), policy: p).get(), "u1").ledgerError)
  }

  @Test func tagsGiveSignalsPerUser() throws {
    let tags = "user_id,country\nu1,DE\nu1,US\nu2,US\nu3,\nu4,XX\nu5, fr \n"
    let loader = try load(tags: Array(tags.utf8)).get()
    #expect(facts(loader, "u1").tags.hasProtected)
    #expect(!facts(loader, "u2").tags.hasProtected && facts(loader, "u2").tags.hasValid)
    #expect(facts(loader, "u3").tags == SignalSet())
    #expect(facts(loader, "u4").tags.hasInvalid)
    #expect(facts(loader, "u5").tags.hasProtected)
    #expect(loader.jurisdictionFiles[0].rows == 6)
    #expect(loader.jurisdictionFiles[0].users == 5)
  }

  @Test func jsonlTags() throws {
    let tags = #"""
      {"user_id":"u1","country":"DE"}
      {"user_id":7,"country":null}
      {"user_id":"u3","country":5}
      """#
    let loader = try load(tags: Array(tags.utf8)).get()
    #expect(facts(loader, "u1").tags.hasProtected)
    #expect(facts(loader, "7").tags == SignalSet())
    #expect(facts(loader, "u3").tags.hasInvalid)
  }

  @Test(arguments: ["user_id\nu1\n", "user_id,country\nu1,DE,extra\n", #"{"user_id":"u1"}"#])
  func tagStructuralErrorsAreFatal(_ text: String) throws {
    guard case .failure = try load(tags: Array(text.utf8)) else {
      Issue.record("accepted: \(text)")
      return
    }
  }
}

/// The CSV reader's fast path (memchr, split in place) and its quoted-row path against a
/// plain reference parser, on random rows, including rows longer than the reader's buffer.
@Suite struct CSVRowReaderTests {
  /// RFC 4180 as SPEC §2.4 reads it, written out simply: rows of fields, blank rows skipped.
  private func reference(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var rows: [[[UInt8]]] = []
    var fields: [[UInt8]] = []
    var field: [UInt8] = []
    var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    var inQuotes = false
    var quoted = false
    func endRow() {
      fields.append(field)
      let blank =
        !quoted && fields.count == 1 && fields[0].allSatisfy { [0x20, 0x09, 0x0D].contains($0) }
      if !blank { rows.append(fields) }
      fields = []
      field = []
      quoted = false
    }
    while i < bytes.count {
      let c = bytes[i]
      i += 1
      if inQuotes {
        if c == 0x22 {
          if i < bytes.count && bytes[i] == 0x22 {
            field.append(0x22)
            i += 1
          } else {
            inQuotes = false
          }
        } else {
          field.append(c)
        }
      } else if c == 0x22 {
        inQuotes = true
        quoted = true
      } else if c == 0x2C {
        fields.append(field)
        field = []
      } else if c == 0x0A {
        endRow()
      } else if c == 0x0D && i < bytes.count && bytes[i] == 0x0A {
        i += 1
        endRow()
      } else {
        field.append(c)
      }
    }
    if !field.isEmpty || !fields.isEmpty || quoted { endRow() }
    return rows
  }

  private func read(_ bytes: [UInt8]) throws -> [[[UInt8]]] {
    let path = writeFile(temporaryFolder() + "/ledger.csv", bytes)
    let csv = CSVRowReader(reader: try DecodingReader(source: try InputSource(path: path)))
    var rows: [[[UInt8]]] = []
    while try csv.next() {
      rows.append(csv.fields.map { Array(csv.row[$0]) })
    }
    return rows
  }

  @Test(arguments: [1, 2, 3, 4])
  func agreesWithAReferenceParser(seed: UInt64) throws {
    var rng = SplitMix64(seed: seed)
    var text: [UInt8] = seed == 1 ? [0xEF, 0xBB, 0xBF] : []
    for _ in 0..<3000 {
      let width = 1 + Int(rng.next() % 5)
      for f in 0..<width {
        if f > 0 { text.append(0x2C) }
        let long = rng.next() % 500 == 0
        let length = long ? 300_000 + Int(rng.next() % 1000) : Int(rng.next() % 12)
        if rng.next() % 4 == 0 {
          // Quoted: commas, quotes, line breaks inside.
          text.append(0x22)
          for _ in 0..<length {
            let pick = rng.next() % 10
            if pick == 0 {
              text += [0x22, 0x22]
            } else if pick == 1 {
              text.append(0x2C)
            } else if pick == 2 {
              text.append(0x0A)
            } else {
              text.append(UInt8(ascii: "a") + UInt8(rng.next() % 26))
            }
          }
          text.append(0x22)
        } else {
          for _ in 0..<length {
            text.append(rng.next() % 20 == 0 ? 0x20 : UInt8(ascii: "0") + UInt8(rng.next() % 10))
          }
        }
      }
      switch rng.next() % 6 {
      case 0: text += [0x0D, 0x0A]
      case 1: text += [0x0A, 0x20, 0x0A]  // a blank row between
      default: text.append(0x0A)
      }
    }
    if seed == 2 { text.removeLast() }  // the last row without a line end
    #expect(try read(text) == reference(text))
  }

  @Test func peekedFieldIsTheNextRowsField() throws {
    let path = writeFile(temporaryFolder() + "/ledger.csv", "a,b,c\nd,e,f\n\"g\",h,i\n")
    let csv = CSVRowReader(reader: try DecodingReader(source: try InputSource(path: path)))
    #expect(try csv.next())
    #expect(csv.peekField(1).map(Array.init) == Array("e".utf8))
    #expect(csv.peekField(5) == nil)
    #expect(try csv.next())
    #expect(csv.peekField(1) == nil)  // a quoted row is not peeked
  }
}
