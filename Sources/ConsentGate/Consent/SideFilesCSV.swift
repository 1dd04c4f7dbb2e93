#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// CSV side files (RFC 4180, a header row), for ``SideFileLoader``.
extension SideFileLoader {
  mutating func loadCSV(
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

}
