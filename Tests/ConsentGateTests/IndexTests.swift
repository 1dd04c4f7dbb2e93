import Crypto
import Foundation
import Testing

@testable import ConsentGate

/// SPEC §9: the consent index file.
@Suite(.serialized) struct IndexTests {
  /// A deterministic generator, so that a failing seed can be run again.
  struct Generator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
  }

  static let ids = [
    "u1", "u2", "u3", "17", "0", "007", "-5", "18446744073709551615", "18446744073709551616",
    "ü-ñ", String(repeating: "x", count: 300), "u 9", "42", "u4", "u5", "u6",
  ]
  static let times = [
    "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-06-01T12:00:00.5Z",
    "2024-06-01T12:00:00.5000000000000000000001Z", "2025-05-31T23:59:59.999999999Z",
    "2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z", "1700000000", "-99999999999999",
    "2023-01-01T00:00:00Z",
  ]
  static let countries = [
    "DE", "fr", " US ", "GB", "ES-CN", "FR-PF", "XX", "", "EL", "CH", "nl-aw",
  ]

  /// Random ledger and tag files (CSV or JSONL) with ties, expiries, notices, bad rows (for
  /// `--lenient-ledger`) and subdivisions.
  static func sideFiles(_ g: inout Generator, _ dir: String, lenient: Bool) -> ([String], [String])
  {
    var consent: [String] = []
    for f in 0..<(1 + g.int(2)) {
      let json = g.int(2) == 0
      var lines = json ? [] : ["user_id,purpose,status,recorded_at,notice_version,expires_at"]
      for _ in 0..<(5 + g.int(40)) {
        let id = g.pick(ids)
        let purpose = g.int(6) == 0 ? "ads" : "ai_training"
        var status = g.pick(["granted", "granted", "withdrawn", "objected", "GRANTED"])
        if lenient && g.int(12) == 0 { status = "maybe" }
        let at = g.pick(times)
        let notice = g.pick(["v1", "v2", ""])
        let expires = g.int(4) == 0 ? g.pick(times) : ""
        if json {
          let n = notice.isEmpty ? "null" : "\"\(notice)\""
          let x = expires.isEmpty ? "null" : "\"\(expires)\""
          lines.append(
            #"{"user_id":"\#(id)","purpose":"\#(purpose)","status":"\#(status)","recorded_at":"\#(at)","notice_version":\#(n),"expires_at":\#(x)}"#
          )
        } else {
          lines.append("\(id),\(purpose),\(status),\(at),\(notice),\(expires)")
        }
      }
      consent.append(
        writeFile(
          "\(dir)/consent\(f).\(json ? "jsonl" : "csv")", lines.joined(separator: "\n") + "\n"))
    }
    var tags: [String] = []
    for f in 0..<g.int(3) {
      var lines = ["user_id,country"]
      for _ in 0..<(3 + g.int(20)) {
        lines.append("\(g.pick(ids)),\"\(g.pick(countries))\"")
      }
      tags.append(writeFile("\(dir)/tags\(f).csv", lines.joined(separator: "\n") + "\n"))
    }
    return (consent, tags)
  }

  static func build(
    _ policy: Policy, _ consent: [String], _ tags: [String], to path: String, buckets: Int? = nil
  ) throws -> IndexHeader {
    var builder = IndexBuilder(policy: policy, consentFiles: consent, jurisdictionFiles: tags)
    builder.buckets = buckets
    if buckets != nil { builder.memoryBytes = 1 }
    return try builder.build(output: path)
  }

  /// The index answers every id exactly as the side files loaded in memory do, over many
  /// random ledgers, policies and bucket counts.
  @Test func randomLedgersGiveTheSameFactsAsTheSideFiles() throws {
    for seed in 0..<60 {
      var g = Generator(state: UInt64(seed))
      let dir = temporaryFolder("index-random-\(seed)")
      let lenient = g.int(2) == 0
      let (consent, tags) = IndexTests.sideFiles(&g, dir, lenient: lenient)
      let policy = try makePolicy { s in
        s.lenientLedger = lenient
        s.protect = g.pick([["eea"], ["eu"], ["all"], ["uk", "ch"], ["de", "us"]])
        if g.int(2) == 0 { s.maxConsentAge = Int64(g.pick([0, 30, 400, 4000])) }
        if g.int(2) == 0 { s.noticeVersions = ["v2"] }
      }
      var loader = SideFileLoader(policy: policy)
      let loaded: UserLookup
      do {
        try loader.load(consent: consent, jurisdictions: tags)
        loaded = .loaded(loader.index)
      } catch {
        // A bad row without --lenient-ledger: the build fails the same way.
        #expect(!lenient)
        #expect(throws: IndexBuildFailure.self) {
          _ = try IndexTests.build(policy, consent, tags, to: dir + "/i.cgi")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/i.cgi"))
        continue
      }
      let header = try IndexTests.build(
        policy, consent, tags, to: dir + "/i.cgi", buckets: g.pick([1, 2, 8, 64]))
      #expect(header.consentFiles == loader.consentFiles, "seed \(seed)")
      #expect(header.jurisdictionFiles == loader.jurisdictionFiles, "seed \(seed)")
      #expect(header.users == loader.index.count, "seed \(seed)")
      let index = try MappedIndex(path: dir + "/i.cgi")
      _ = try index.verify()
      let mapped = UserLookup.mapped(index.lookup(protection: policy.protection))
      for id in IndexTests.ids + ["nobody", "", "u", "1", "00"] {
        let (a, b) = Array(id.utf8).withUnsafeBytes {
          (loaded.facts(for: $0), mapped.facts(for: $0))
        }
        #expect(a.state == b.state, "seed \(seed) id \(id)")
        #expect(a.ledgerError == b.ledgerError, "seed \(seed) id \(id)")
        #expect(a.tags == b.tags, "seed \(seed) id \(id)")
        #expect(loaded.decidedAt(a) == mapped.decidedAt(b), "seed \(seed) id \(id)")
      }
    }
  }

  /// `filter --index` writes the same bytes and the same report, apart from `index`, as
  /// `filter --consent … --jurisdictions …`.
  @Test func filterWithTheIndexWritesTheSameOutputsAndReport() throws {
    for seed in 0..<6 {
      var g = Generator(state: UInt64(1000 + seed))
      let dir = temporaryFolder("index-filter-\(seed)")
      let (consent, tags) = IndexTests.sideFiles(&g, dir, lenient: true)
      var lines: [String] = []
      for k in 0..<400 {
        let id = g.int(10) == 0 ? "stranger" : g.pick(IndexTests.ids)
        let country = g.int(3) == 0 ? #","geo":{"country":"\#(g.pick(IndexTests.countries))"}"# : ""
        let time = g.int(4) == 0 ? "" : #","created_at":"\#(g.pick(IndexTests.times))""#
        lines.append(#"{"user_id":"\#(id)","n":\#(k)\#(country)\#(time)}"#)
      }
      let input = writeFile(dir + "/posts.jsonl", lines.joined(separator: "\n") + "\n")
      let common = [
        "--quiet", "--cutoff", "2025-06-01T00:00:00Z", "--lenient-ledger", "--country-path",
        "/geo/country", "--consent-covers", "since-grant", "--lineage",
      ]
      let sides = consent.flatMap { ["--consent", $0] } + tags.flatMap { ["--jurisdictions", $0] }
      let build = cg(
        [
          "index", "build", "--output", dir + "/i.cgi", "--cutoff", "2025-06-01T00:00:00Z",
          "--lenient-ledger",
        ] + sides)
      #expect(build.status == 0, "\(build.stderr)")
      let a = cg(["filter", "--out", dir + "/a"] + common + sides + [input])
      let b = cg(["filter", "--out", dir + "/b", "--index", dir + "/i.cgi"] + common + [input])
      #expect(a.status == b.status)
      for sub in ["kept/posts.jsonl.gz", "quarantine/posts.jsonl.gz", "lineage/posts.jsonl.gz"] {
        #expect(readBytes("\(dir)/a/\(sub)") == readBytes("\(dir)/b/\(sub)"), "seed \(seed) \(sub)")
      }
      var ra = try reportJSON(dir + "/a")
      var rb = try reportJSON(dir + "/b")
      let index = try #require(rb["index"] as? [String: Any])
      #expect(index["path"] as? String == dir + "/i.cgi")
      #expect(index["sha256"] as? String == sha256Hex(readBytes(dir + "/i.cgi")))
      #expect(index["format"] as? Int == 1)
      #expect(index["users"] as? Int == (try MappedIndex.readHeader(path: dir + "/i.cgi")).users)
      #expect(ra["index"] is NSNull)
      for key in ["index", "started_at", "finished_at"] {
        ra[key] = nil
        rb[key] = nil
      }
      #expect(NSDictionary(dictionary: ra) == NSDictionary(dictionary: rb), "seed \(seed)")
    }
  }

  private func fixture(_ dir: String) -> [String] {
    writeFile(
      dir + "/consent.csv",
      "user_id,purpose,status,recorded_at,notice_version\n"
        + "u1,ai_training,granted,2024-01-01T00:00:00Z,v2\n"
        + "u2,ai_training,granted,2024-01-01T00:00:00Z,v1\n")
    writeFile(dir + "/tags.csv", "user_id,country\nu1,DE\nu2,DE\nu3,US\n")
    writeFile(dir + "/posts.jsonl", #"{"user_id":"u1"}"# + "\n" + #"{"user_id":"u2"}"# + "\n")
    return [
      "--consent", dir + "/consent.csv", "--jurisdictions", dir + "/tags.csv",
    ]
  }

  private let baked = [
    "--cutoff", "2025-06-01T00:00:00Z", "--max-consent-age", "730", "--notice-versions", "v2,v3",
  ]

  @Test func buildRecordsItsPolicyAndSources() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    let r = cg(["index", "build", "--output", dir + "/i.cgi", "--purpose", "p"] + baked + sides)
    #expect(r.status == 0, "\(r.stderr)")
    let info = cg(["index", "info", "--json", dir + "/i.cgi"])
    #expect(info.status == 0)
    let header = try #require(
      try JSONSerialization.jsonObject(with: Data(info.stdout)) as? [String: Any])
    #expect(header["format"] as? Int == 1)
    #expect(header["users"] as? Int == 3)
    let policy = try #require(header["policy"] as? [String: Any])
    #expect(policy["purpose"] as? String == "p")
    #expect(policy["cutoff"] as? String == "2025-06-01T00:00:00Z")
    #expect(policy["max_consent_age"] as? Int == 730)
    #expect(policy["notice_versions"] as? [String] == ["v2", "v3"])
    #expect(policy["lenient_ledger"] as? Bool == false)
    let consent = try #require(header["consent"] as? [[String: Any]])
    #expect(consent.count == 1)
    #expect(consent[0]["path"] as? String == dir + "/consent.csv")
    #expect(consent[0]["sha256"] as? String == sha256Hex(readBytes(dir + "/consent.csv")))
    #expect(consent[0]["rows"] as? Int == 2)
    #expect(consent[0]["users"] as? Int == 2)
    let tags = try #require(header["jurisdictions"] as? [[String: Any]])
    #expect(tags[0]["users"] as? Int == 3)
    #expect((header["tool"] as? [String: Any])?["version"] as? String == FilterReport.toolVersion)
    let sections = try #require(header["sections"] as? [[String: Any]])
    #expect(
      sections.map { $0["name"] as? String } == [
        "entries", "slots", "tag_sets", "exact_times", "block_crcs",
      ])
    let verify = cg(["index", "verify", "--json", dir + "/i.cgi"])
    #expect(verify.status == 0)
    let checked = try #require(
      try JSONSerialization.jsonObject(with: Data(verify.stdout)) as? [String: Any])
    #expect(checked["sha256"] as? String == sha256Hex(readBytes(dir + "/i.cgi")))
    #expect(cg(["index", "verify", dir + "/i.cgi"]).status == 0)
  }

  @Test func buildNeedsACutoffAndWritesNothingOnABadLedger() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    #expect(cg(["index", "build", "--output", dir + "/i.cgi"] + sides).status == 64)
    writeFile(
      dir + "/bad.csv",
      "user_id,purpose,status,recorded_at\nu1,ai_training,maybe,2024-01-01T00:00:00Z\n")
    let r = cg([
      "index", "build", "--output", dir + "/i.cgi", "--cutoff", "2025-01-01T00:00:00Z",
      "--consent", dir + "/bad.csv",
    ])
    #expect(r.status == 2)
    #expect(r.stderr.contains("bad.csv:2"))
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == [
        "bad.csv", "consent.csv", "posts.jsonl", "tags.csv",
      ])
  }

  @Test func aLedgerThatChangesWhileItIsReadFailsTheBuild() throws {
    let dir = temporaryFolder()
    _ = fixture(dir)
    var builder = IndexBuilder(
      policy: try makePolicy(), consentFiles: [dir + "/consent.csv"], jurisdictionFiles: [])
    builder.afterReading = {
      let h = FileHandle(forWritingAtPath: dir + "/consent.csv")!
      h.seekToEndOfFile()
      h.write(Data("u9,ai_training,granted,2024-01-01T00:00:00Z,v2\n".utf8))
      try? h.close()
    }
    #expect {
      _ = try builder.build(output: dir + "/i.cgi")
    } throws: { error in
      if case .changed(let path)? = error as? IndexBuildFailure {
        return path == dir + "/consent.csv"
      }
      return false
    }
    #expect(!FileManager.default.fileExists(atPath: dir + "/i.cgi"))
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") } == [])
  }

  /// A run's baked fields must equal the index's, compared as values; the cutoff alone may be
  /// left out.
  @Test func aPolicyThatDiffersFromTheIndexIsAUsageErrorNamingTheField() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    #expect(cg(["index", "build", "--output", dir + "/i.cgi"] + baked + sides).status == 0)
    let run = ["filter", "--quiet", "--index", dir + "/i.cgi", dir + "/posts.jsonl"]
    let agreeing = [
      "--max-consent-age", "730", "--notice-versions", "v3,v2",
    ]
    for (extra, field) in [
      (["--purpose", "ads"], "purpose"),
      (["--cutoff", "2025-06-01T00:00:01Z"], "cutoff"),
      (["--max-consent-age", "731"], "max_consent_age"),
      (["--notice-versions", "v2"], "notice_versions"),
      (["--lenient-ledger"], "lenient_ledger"),
    ] {
      let r = cg(run + ["--out", dir + "/o-\(field)"] + agreeing + extra)
      #expect(r.status == 64, "\(field)")
      #expect(r.stderr.contains(field), "\(field): \(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: dir + "/o-\(field)/report.json"))
    }
    // Equal values in other forms, and the cutoff taken from the index.
    let same = cg(run + ["--out", dir + "/o", "--cutoff", "2025-06-01T02:00:00+02:00"] + agreeing)
    #expect(same.status == 0, "\(same.stderr)")
    let left = cg(run + ["--out", dir + "/o2", "--resume"] + agreeing)
    #expect(left.status == 0, "\(left.stderr)")
    #expect(try reportJSON(dir + "/o2")["cutoff"] as? String == "2025-06-01T00:00:00Z")
    // u1 (v2) consented; u2 (v1) has an outdated notice.
    #expect(try reportJSON(dir + "/o2")["reasons"].map { ($0 as! [String: Int])["consented"] } == 1)
    // --index beside --consent or --jurisdictions.
    for extra in [Array(sides[0...1]), Array(sides[2...3])] {
      #expect(cg(run + ["--out", dir + "/o3"] + agreeing + extra).status == 64)
    }
    #expect(
      cg(["explain", "--user", "u1", "--index", dir + "/i.cgi", "--purpose", "ads"]).status == 64)
  }

  /// Every section, the prelude and the header are checked: a flipped byte or a cut file is
  /// exit 2 naming the section, before any output.
  @Test func aDamagedIndexIsRejectedBeforeAnyOutput() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    #expect(cg(["index", "build", "--output", dir + "/i.cgi"] + baked + sides).status == 0)
    let good = readBytes(dir + "/i.cgi")
    let header = try MappedIndex.readHeader(path: dir + "/i.cgi")
    var damaged: [(String, [UInt8])] = []
    for s in header.sections where s.bytes > 0 {
      var b = good
      b[s.offset + s.bytes / 2] ^= 0x10
      damaged.append((s.name, b))
    }
    var prelude = good
    prelude[20] ^= 1
    damaged.append(("prelude", prelude))
    var foreign = good
    foreign[8] = 9
    damaged.append(("prelude", foreign))
    var headerFlip = good
    headerFlip[good.count - 10] ^= 0x01
    damaged.append(("header", headerFlip))
    for cut in [0, 7, 40, 64, 100, good.count / 2, good.count - 1] {
      damaged.append(("", Array(good[0..<cut])))
    }
    damaged.append(("prelude", Array("user_id,country\n".utf8)))
    for (k, (section, bytes)) in damaged.enumerated() {
      let path = writeFile("\(dir)/bad\(k).cgi", bytes)
      let out = "\(dir)/o\(k)"
      let r = cg([
        "filter", "--quiet", "--index", path, "--out", out, "--max-consent-age", "730",
        "--notice-versions", "v2,v3", dir + "/posts.jsonl",
      ])
      #expect(r.status == 2, "case \(k)")
      #expect(r.stderr.contains(path), "case \(k)")
      #expect(r.stderr.contains("section \(section)"), "case \(k): \(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: out + "/kept"), "case \(k)")
      #expect(cg(["index", "verify", path]).status == 2, "case \(k)")
    }
  }

  @Test func explainAuditAndPurgeAnswerTheSameFromTheIndex() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    #expect(cg(["index", "build", "--output", dir + "/i.cgi"] + baked + sides).status == 0)
    let agreeing = ["--max-consent-age", "730", "--notice-versions", "v2,v3"]
    for user in ["u1", "u2", "u3", "u4"] {
      let a = cg(["explain", "--json", "--user", user] + baked + sides)
      let b = cg(["explain", "--json", "--user", user, "--index", dir + "/i.cgi"] + agreeing)
      #expect(a.status == 0 && b.status == 0)
      let ja = try JSONSerialization.jsonObject(with: Data(a.stdout)) as! [String: Any]
      let jb = try JSONSerialization.jsonObject(with: Data(b.stdout)) as! [String: Any]
      for key in ["consent_state", "decided_at", "jurisdiction", "decision", "reason"] {
        #expect("\(ja[key]!)" == "\(jb[key]!)", "\(user) \(key)")
      }
      #expect(jb["index"] as? String == dir + "/i.cgi")
    }
    // A corpus filtered in 2024, audited and purged with the index.
    let corpus = cg(
      ["filter", "--quiet", "--out", dir + "/c", "--cutoff", "2024-06-01T00:00:00Z"] + sides
        + [dir + "/posts.jsonl"])
    #expect(corpus.status == 0)
    let viaFiles = cg(
      ["audit", "--corpus", dir + "/c", "--out", dir + "/a1", "--cutoff", "2025-06-01T00:00:00Z"]
        + sides)
    // The corpus's own policy has no notice versions or age limit: an index for it.
    #expect(
      cg(
        ["index", "build", "--output", dir + "/j.cgi", "--cutoff", "2025-06-01T00:00:00Z"] + sides
      )
      .status == 0)
    let viaIndex = cg([
      "audit", "--corpus", dir + "/c", "--out", dir + "/a2", "--index", dir + "/j.cgi",
    ])
    #expect(viaFiles.status == viaIndex.status)
    #expect(readBytes(dir + "/a1/failing.jsonl") == readBytes(dir + "/a2/failing.jsonl"))
    let audit =
      try JSONSerialization.jsonObject(with: Data(readBytes(dir + "/a2/audit.json")))
      as! [String: Any]
    #expect(
      (audit["index"] as? [String: Any])?["sha256"] as? String
        == sha256Hex(readBytes(dir + "/j.cgi")))
    let purged = cg([
      "purge", "--quiet", "--corpus", dir + "/c", "--out", dir + "/p", "--index", dir + "/j.cgi",
    ])
    #expect(purged.status == 0, "\(purged.stderr)")
    #expect(try reportJSON(dir + "/p")["index"] is [String: Any])
  }

  /// Resume compares the index as a side file in its own role: switching between side files
  /// and the index redoes the input.
  @Test func resumeReusesOnlyWithTheSameIndex() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    #expect(
      cg(
        ["index", "build", "--output", dir + "/i.cgi", "--cutoff", "2025-06-01T00:00:00Z"] + sides
      ).status == 0)
    let base = [
      "filter", "--quiet", "--out", dir + "/o", "--resume", "--cutoff", "2025-06-01T00:00:00Z",
    ]
    #expect(cg(base + sides + [dir + "/posts.jsonl"]).status == 0)
    #expect(cg(base + ["--index", dir + "/i.cgi", dir + "/posts.jsonl"]).status == 0)
    var inputs = try reportJSON(dir + "/o")["inputs"] as! [[String: Any]]
    #expect(inputs[0]["resumed"] == nil)
    #expect(cg(base + ["--index", dir + "/i.cgi", dir + "/posts.jsonl"]).status == 0)
    inputs = try reportJSON(dir + "/o")["inputs"] as! [[String: Any]]
    #expect(inputs[0]["resumed"] as? Bool == true)
  }

  /// Ids the index stores as numbers and as bytes, and one longer than 255 bytes.
  @Test func idsOfEveryFormAreFoundExactly() throws {
    let dir = temporaryFolder()
    let long = String(repeating: "é", count: 200)
    let ids = ["0", "7", "007", "-7", "18446744073709551615", "18446744073709551616", long, "a"]
    var csv = "user_id,purpose,status,recorded_at\n"
    for id in ids { csv += "\"\(id)\",ai_training,granted,2024-01-01T00:00:00Z\n" }
    let ledger = writeFile(dir + "/c.csv", csv)
    let policy = try makePolicy()
    _ = try IndexTests.build(policy, [ledger], [], to: dir + "/i.cgi")
    let index = try MappedIndex(path: dir + "/i.cgi")
    let lookup = UserLookup.mapped(index.lookup(protection: policy.protection))
    for id in ids {
      #expect(Array(id.utf8).withUnsafeBytes { lookup.facts(for: $0) }.state == .valid, "\(id)")
    }
    for id in ["00", "07", "+7", "70", "18446744073709551614", "", String(long.dropLast()), "b"] {
      #expect(Array(id.utf8).withUnsafeBytes { lookup.facts(for: $0) } == .unknown, "\(id)")
    }
  }

  /// Over many 1 MiB blocks: a run checks every block, `explain` only those its user's
  /// lookup reads, and a damaged one is exit 2 either way.
  @Test func explainChecksTheBlocksItReads() throws {
    let dir = temporaryFolder()
    var csv = "user_id,purpose,status,recorded_at\n"
    for u in 0..<120_000 { csv += "user-\(u),ai_training,granted,2024-01-01T00:00:00Z\n" }
    let ledger = writeFile(dir + "/c.csv", csv)
    let path = dir + "/i.cgi"
    #expect(
      cg([
        "index", "build", "--output", path, "--cutoff", "2025-01-01T00:00:00Z", "--consent", ledger,
      ])
      .status == 0)
    let header = try MappedIndex.readHeader(path: path)
    #expect(header.sections[0].bytes > 2 * IndexFile.blockBytes)
    // Damage the entry of user-7 (it is found by its hash and the probe).
    let index = try MappedIndex(path: path)
    let id = Array("user-7".utf8)
    let e = try #require(
      id.withUnsafeBytes { b in
        index.probe(b, ConsentIndex.hash(b), from: index.home(ConsentIndex.hash(b)))
      })
    var bytes = readBytes(path)
    bytes[header.sections[0].offset + e + IndexFile.idAt + 3] ^= 0x01
    let bad = writeFile(dir + "/bad.cgi", bytes)
    let explain = ["explain", "--cutoff", "2025-01-01T00:00:00Z", "--index"]
    #expect(cg(explain + [path, "--user", "user-7"]).status == 0)
    let hit = cg(explain + [bad, "--user", "user-7"])
    #expect(hit.status == 2)
    #expect(hit.stderr.contains("section entries"))
    // A user whose blocks are whole still gets an answer, from the same damaged file…
    let others = (0..<30).map { "user-\($0 * 4000)" }.filter { other in
      cg(explain + [bad, "--user", other]).status == 0
    }
    #expect(!others.isEmpty)
    // …but a run, and verify, check every block.
    #expect(cg(["index", "verify", bad]).status == 2)
    let posts = writeFile(dir + "/p.jsonl", #"{"user_id":"user-1"}"# + "\n")
    #expect(cg(["filter", "--quiet", "--index", bad, "--out", dir + "/o", posts]).status == 2)
    #expect(cg(["filter", "--quiet", "--index", path, "--out", dir + "/o", posts]).status == 0)
  }

  /// Shards of one job share the index: each shard report names it, and the merged report
  /// keeps it (SPEC §9, §10).
  @Test func shardsShareOneIndex() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    let path = dir + "/i.cgi"
    #expect(
      cg(["index", "build", "--output", path, "--cutoff", "2025-06-01T00:00:00Z"] + sides).status
        == 0)
    var inputs: [String] = []
    for k in 0..<4 {
      inputs.append(writeFile("\(dir)/p\(k).jsonl", #"{"user_id":"u\#(k % 3 + 1)"}"# + "\n"))
    }
    for shard in ["0/2", "1/2"] {
      let r = cg(
        ["filter", "--quiet", "--index", path, "--out", dir + "/o", "--shard", shard] + inputs)
      #expect(r.status == 0, "\(r.stderr)")
    }
    #expect(cg(["merge-reports", dir + "/o"]).status == 0)
    let index = try #require(try reportJSON(dir + "/o")["index"] as? [String: Any])
    #expect(index["sha256"] as? String == sha256Hex(readBytes(path)))
    #expect(try reportJSON(dir + "/o")["totals"].map { ($0 as! [String: Int])["records"] } == 4)
  }

  /// SPEC §13: its report keys and codes are there with the values that change nothing, a
  /// value outside the choices is refused, and the index bakes `children` and `unknown_age`
  /// (a difference in `unknown_age` is refused even while `children` is off).
  @Test func theOptionsOfSection13AreReportedAndBakedIntoTheIndex() throws {
    let dir = temporaryFolder()
    let sides = fixture(dir)
    let run = ["filter", "--quiet", "--cutoff", "2025-06-01T00:00:00Z"] + sides
    #expect(cg(run + ["--out", dir + "/o", dir + "/posts.jsonl"]).status == 0)
    let report = try reportJSON(dir + "/o")
    let reasons = try #require(report["reasons"] as? [String: Int])
    #expect(reasons.count == 20)
    #expect(reasons["child_consent_invalid"] == 0 && reasons["third_party_data"] == 0)
    let policy = try #require(report["policy"] as? [String: Any])
    #expect(policy["embedded_user_path"] as? [String] == [])
    #expect(policy["third_party"] as? String == "quarantine")
    #expect(policy["children"] as? String == "off")
    #expect(policy["unknown_age"] as? String == "child")
    for extra in [
      ["--children", "yes"], ["--embedded-user-path", "includes"],
      ["--third-party", "keep"], ["--unknown-age", "teen"],
    ] {
      #expect(
        cg(run + extra + ["--out", dir + "/x", dir + "/posts.jsonl"]).status == 64, "\(extra)")
    }
    #expect(
      cg(
        run + [
          "--third-party", "drop", "--unknown-age", "adult", "--out", dir + "/y",
          dir + "/posts.jsonl",
        ]
      )
      .status == 0)
    #expect(
      cg(
        [
          "index", "build", "--output", dir + "/i.cgi", "--cutoff", "2025-06-01T00:00:00Z",
          "--unknown-age", "adult",
        ] + sides
      )
      .status == 0)
    let mismatch = cg([
      "filter", "--quiet", "--index", dir + "/i.cgi", "--out", dir + "/z", dir + "/posts.jsonl",
    ])
    #expect(mismatch.status == 64)
    #expect(mismatch.stderr.contains("unknown_age"))
    #expect(
      cg([
        "filter", "--quiet", "--index", dir + "/i.cgi", "--unknown-age", "adult", "--out",
        dir + "/z", dir + "/posts.jsonl",
      ])
      .status == 0)
  }

  /// A bucket larger than the memory allows is split by the next hash bits and resolved part
  /// by part: the same facts, the same file.
  @Test func anOversizedBucketIsSplitAndGivesTheSameIndex() throws {
    let dir = temporaryFolder()
    var g = Generator(state: 77)
    var csv = "user_id,purpose,status,recorded_at\n"
    for u in 0..<6000 {
      for _ in 0...g.int(3) {
        csv += "u\(u),ai_training,\(g.pick(["granted", "withdrawn"])),\(g.pick(IndexTests.times))\n"
      }
    }
    let ledger = writeFile(dir + "/c.csv", csv)
    var tagRows = "user_id,country\n"
    for u in stride(from: 0, to: 6000, by: 2) {
      tagRows += "u\(u),\(g.pick(IndexTests.countries))\n"
    }
    let tags = writeFile(dir + "/t.csv", tagRows)
    let policy = try makePolicy()
    var whole = IndexBuilder(policy: policy, consentFiles: [ledger], jurisdictionFiles: [tags])
    whole.buckets = 1
    _ = try whole.build(output: dir + "/whole.cgi")
    var split = whole
    split.buckets = 4
    split.memoryBytes = 1  // every bucket over the limit: split by the hash bits after its own
    _ = try split.build(output: dir + "/split.cgi")
    let a = try MappedIndex.readHeader(path: dir + "/whole.cgi")
    let b = try MappedIndex.readHeader(path: dir + "/split.cgi")
    #expect(a.users == 6000 && b.users == 6000)
    #expect(a.sections.map(\.crc32) == b.sections.map(\.crc32))
    let index = try MappedIndex(path: dir + "/split.cgi")
    _ = try index.verify()
    var loader = SideFileLoader(policy: policy)
    try loader.load(consent: [ledger], jurisdictions: [tags])
    let mapped = UserLookup.mapped(index.lookup(protection: policy.protection))
    for u in 0..<6000 {
      let id = Array("u\(u)".utf8)
      let (x, y) = id.withUnsafeBytes { (loader.index.facts(for: $0), mapped.facts(for: $0)) }
      #expect(x.state == y.state && x.tags == y.tags, "u\(u)")
    }
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") } == [])
  }
}
