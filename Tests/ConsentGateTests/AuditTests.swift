import Foundation
import Testing

@testable import ConsentGate

/// SPEC §11: `audit` and `purge` after consent changed.
@Suite(.serialized) struct AuditTests {
  /// A corpus where u1 (DE) consented and u3 (US) is not protected; then u1 withdraws and u3
  /// turns out to be in FR.
  private func corpus(_ dir: String, lineage: Bool = true) -> (first: [String], later: [String]) {
    writeFile(
      dir + "/a.jsonl",
      [
        #"{"user_id":"u1","n":1}"#, #"{"user_id":"u3","n":2}"#, #"{"user_id":"u2","n":3}"#,
        #"{"user_id":"u1","n":4}"#, #"{"user_id":"u4","n":5}"#,
      ].joined(separator: "\n") + "\n")
    writeFile(dir + "/b.jsonl", #"{"user_id":"u3","n":6}"# + "\n")
    writeFile(dir + "/c.jsonl", #"{"user_id":"u4","n":7}"# + "\n")
    writeFile(
      dir + "/consent.csv",
      "user_id,purpose,status,recorded_at\nu1,ai_training,granted,2024-01-01T00:00:00Z\n")
    writeFile(dir + "/tags.csv", "user_id,country\nu1,DE\nu2,DE\nu3,US\nu4,US\n")
    writeFile(
      dir + "/consent2.csv",
      "user_id,purpose,status,recorded_at\nu1,ai_training,granted,2024-01-01T00:00:00Z\n"
        + "u1,ai_training,withdrawn,2025-03-01T00:00:00Z\n")
    writeFile(dir + "/tags2.csv", "user_id,country\nu1,DE\nu2,DE\nu3,FR\nu4,US\n")
    let first =
      ["filter", "--quiet", "--out", dir + "/c", "--cutoff", "2025-01-01T00:00:00Z"]
      + ["--consent", dir + "/consent.csv", "--jurisdictions", dir + "/tags.csv"]
      + (lineage ? ["--lineage"] : []) + [dir + "/a.jsonl", dir + "/b.jsonl", dir + "/c.jsonl"]
    let later = [
      "--corpus", dir + "/c", "--consent", dir + "/consent2.csv", "--jurisdictions",
      dir + "/tags2.csv", "--cutoff", "2025-06-01T00:00:00.25Z",
    ]
    return (first, later)
  }

  @Test func auditFindsRecordsNoLongerLawful() throws {
    let dir = temporaryFolder()
    let (first, later) = corpus(dir)
    #expect(cg(first).status == 0)
    let r = cg(["audit"] + later)
    #expect(r.status == 4)
    let folder = dir + "/c/audit/20250601T000000.25Z"
    let audit = try #require(
      try JSONSerialization.jsonObject(with: Data(readBytes(folder + "/audit.json")))
        as? [String: Any])
    #expect(
      audit["corpus_report_sha256"] as? String == sha256Hex(readBytes(dir + "/c/report.json")))
    #expect(audit["cutoff"] as? String == "2025-06-01T00:00:00.25Z")
    #expect(audit["index"] is NSNull)
    let files = audit["files"] as! [[String: Any]]
    #expect(
      files.map { $0["path"] as! String } == [
        "kept/a.jsonl.gz", "kept/b.jsonl.gz", "kept/c.jsonl.gz",
      ])
    // a: u1 twice (withdrawn), u3 (now FR, no consent), u4 still fine.
    #expect(files[0]["records"] as? Int == 4)
    #expect(files[0]["still_lawful"] as? Int == 1)
    #expect((files[0]["failing"] as? [String: Int]) == ["withdrawn": 2, "no_consent": 1])
    #expect(files[0]["users_failing"] as? Int == 2)
    #expect((files[2]["failing"] as? [String: Int]) == [:])
    let totals = audit["totals"] as! [String: Int]
    #expect(totals == ["records": 6, "still_lawful": 2, "failing": 4, "users_failing": 2])
    let failing = String(decoding: readBytes(folder + "/failing.jsonl"), as: UTF8.self)
    #expect(
      failing == """
        {"path":"kept/a.jsonl.gz","line":1,"reason":"withdrawn"}
        {"path":"kept/a.jsonl.gz","line":2,"reason":"no_consent"}
        {"path":"kept/a.jsonl.gz","line":3,"reason":"withdrawn"}
        {"path":"kept/b.jsonl.gz","line":1,"reason":"no_consent"}

        """)
    // With the old side files nothing fails: exit 0, into the folder asked for.
    let same = cg([
      "audit", "--corpus", dir + "/c", "--consent", dir + "/consent.csv", "--jurisdictions",
      dir + "/tags.csv", "--cutoff", "2025-01-01T00:00:00Z", "--out", dir + "/same",
    ])
    #expect(same.status == 0)
    #expect(readBytes(dir + "/same/failing.jsonl") == [])
  }

  @Test func auditAndPurgeRefuseATamperedCorpus() throws {
    let dir = temporaryFolder()
    let (first, later) = corpus(dir)
    #expect(cg(first).status == 0)
    writeFile(dir + "/c/kept/c.jsonl.gz", gzipMember(Array("{\"user_id\":\"x\"}\n".utf8)))
    #expect(cg(["audit"] + later + ["--out", dir + "/audit"]).status == 2)
    #expect(!FileManager.default.fileExists(atPath: dir + "/audit"))
    #expect(cg(["purge"] + later + ["--out", dir + "/p"]).status == 2)
    #expect(!FileManager.default.fileExists(atPath: dir + "/p/report.json"))
  }

  @Test func purgeDropsWhatAuditFailsAndKeepsTheRestByteForByte() throws {
    let dir = temporaryFolder()
    let (first, later) = corpus(dir)
    #expect(cg(first).status == 0)
    #expect(cg(["purge"] + later + ["--out", dir + "/p", "--quiet"]).status == 0)
    let report = try reportJSON(dir + "/p")
    let derived = report["derived_from"] as! [String: String]
    #expect(derived["report_sha256"] == sha256Hex(readBytes(dir + "/c/report.json")))
    #expect(derived["path"] == dir + "/c/report.json")
    #expect((report["policy"] as! [String: Any])["lineage"] as? Bool == true)
    #expect((report["totals"] as! [String: Int])["kept"] == 2)
    #expect(
      String(decoding: gunzip(dir + "/p/kept/a.jsonl.gz"), as: UTF8.self)
        == #"{"user_id":"u4","n":5}"# + "\n")
    // c had nothing failing: identical decompressed bytes.
    #expect(gunzip(dir + "/p/kept/c.jsonl.gz") == gunzip(dir + "/c/kept/c.jsonl.gz"))
    #expect(FileManager.default.fileExists(atPath: dir + "/p/lineage/a.jsonl.gz"))
    // The purged corpus audits clean against the same data.
    #expect(
      cg(["audit", "--corpus", dir + "/p"] + later.dropFirst(2) + ["--out", dir + "/again"])
        .status == 0)
  }

  @Test func purgeAndAuditUsageErrors() throws {
    let dir = temporaryFolder()
    let (first, later) = corpus(dir, lineage: false)
    #expect(cg(first).status == 0)
    #expect(cg(["purge"] + later + ["--out", dir + "/c"]).status == 64)
    #expect(cg(["purge"] + later + ["--out", dir + "/c/inside"]).status == 64)
    #expect(cg(["purge"] + later + ["--out", dir + "/p", "--purpose", "ads"]).status == 64)
    #expect(cg(["audit"] + later + ["--max-record-bytes", "9"]).status == 64)
  }

  @Test func auditFolderNames() throws {
    let t = try #require(Timestamp.parseRFC3339("2025-06-01T02:00:00.2500+02:00"))
    #expect(
      Corpus.auditFolderName(cutoff: t, given: "2025-06-01T02:00:00.2500+02:00")
        == "20250601T000000.2500Z")
    let whole = try #require(Timestamp.parseRFC3339("2025-06-01T00:00:00Z"))
    #expect(
      Corpus.auditFolderName(cutoff: whole, given: "2025-06-01T00:00:00Z") == "20250601T000000Z")
    #expect(Corpus.auditFolderName(cutoff: whole, given: nil) == "20250601T000000Z")
  }

  /// The README's walk-through ("When consent changes") gives the figures it shows.
  @Test func readmeWalkThrough() throws {
    let dir = temporaryFolder()
    let fixtures =
      URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures"
    #expect(
      cg([
        "filter", "--quiet", "--policy", fixtures + "/policy.json", "--cutoff",
        "2025-03-01T00:00:00Z", "--lineage", "--out", dir + "/march", fixtures + "/posts-a.jsonl",
        fixtures + "/posts-b.jsonl.gz",
      ]).status == 0)
    let held = cg([
      "affected", "--corpus", dir + "/march", "--user", "1000006", "--user", "1000007", "--json",
    ])
    #expect(held.status == 4)
    let answer = try #require(
      try JSONSerialization.jsonObject(with: Data(held.stdout)) as? [String: Any])
    #expect(answer["records"] as? Int == 8)
    let june = [
      "--corpus", dir + "/march", "--consent", fixtures + "/june/consent.csv", "--jurisdictions",
      fixtures + "/jurisdictions.jsonl", "--cutoff", "2025-06-01T00:00:00Z",
    ]
    #expect(cg(["audit"] + june).status == 4)
    let audit = try #require(
      try JSONSerialization.jsonObject(
        with: Data(readBytes(dir + "/march/audit/20250601T000000Z/audit.json"))) as? [String: Any])
    #expect(
      (audit["totals"] as? [String: Int])
        == ["records": 125, "still_lawful": 115, "failing": 10, "users_failing": 4])
    #expect(cg(["purge"] + june + ["--quiet", "--out", dir + "/june"]).status == 0)
    let report = try reportJSON(dir + "/june")
    #expect((report["totals"] as? [String: Int])?["kept"] == 115)
    #expect(
      (report["derived_from"] as? [String: String])?["report_sha256"]
        == sha256Hex(readBytes(dir + "/march/report.json")))
  }
}
