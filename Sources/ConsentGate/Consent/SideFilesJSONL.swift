#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// JSONL side files (one object a line), for ``SideFileLoader``.
extension SideFileLoader {
  /// Whether two top-level keys are equal after unescaping (any key, not only the columns
  /// read: parsers disagree on which duplicate wins).
  func hasDuplicateKey(
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

  mutating func loadJSONL(
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
