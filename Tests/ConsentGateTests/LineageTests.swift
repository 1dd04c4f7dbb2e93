import Foundation
import Testing

@testable import ConsentGate

/// SPEC §11: `filter --lineage` and `consentgate affected`.
@Suite(.serialized) struct LineageTests {
  /// Records of users with awkward ids (escapes, non-ASCII, integers) and a ledger and tags
  /// that keep them.
  private func corpus(_ dir: String) -> [String] {
    let records = [
      #"{"user_id":"b","t":1}"#, #"{"user_id":"a","t":2}"#, #"{"user_id":"b","t":3}"#,
      #"{"user_id":"q\"uote\\back\u0001","t":4}"#, #"{"user_id":"é","t":5}"#,
      #"{"user_id":17,"t":6}"#, #"{"user_id":"17","t":7}"#, #"{"user_id":"dropped","t":8}"#,
      #"{"user_id":"a","t":9}"#,
    ]
    writeFile(dir + "/a.jsonl", records.joined(separator: "\n") + "\n")
    writeFile(dir + "/b.jsonl", #"{"user_id":"dropped"}"# + "\n")
    writeFile(
      dir + "/tags.csv",
      "user_id,country\nb,US\na,US\n\"q\"\"uote\\back\u{01}\",US\né,US\n17,US\ndropped,DE\n")
    return [
      "filter", "--quiet", "--lineage", "--jurisdictions", dir + "/tags.csv", "--cutoff",
      "2026-01-01T00:00:00Z",
    ]
  }

  @Test(arguments: ["gzip", "none"])
  func lineageListsEachKeptUserOnceSortedByBytes(_ compression: String) throws {
    let dir = temporaryFolder()
    let args = corpus(dir) + ["--compression", compression, "--out", dir + "/o"]
    #expect(cg(args + [dir + "/a.jsonl", dir + "/b.jsonl"]).status == 0)
    let suffix = compression == "gzip" ? ".gz" : ""
    let path = dir + "/o/lineage/a.jsonl" + suffix
    let bytes = compression == "gzip" ? gunzip(path) : readBytes(path)
    let expected =
      #"{"user_id":"17","records":2}"# + "\n" + #"{"user_id":"a","records":2}"# + "\n"
      + #"{"user_id":"b","records":2}"# + "\n"
      + #"{"user_id":"q\"uote\\back\u0001","records":1}"# + "\n"
      + #"{"user_id":"é","records":1}"# + "\n"
    #expect(String(decoding: bytes, as: UTF8.self) == expected)
    // A kept file with no records has an empty lineage file (one empty member when gzip).
    let empty = dir + "/o/lineage/b.jsonl" + suffix
    #expect((compression == "gzip" ? gunzip(empty) : readBytes(empty)) == [])
    let report = try reportJSON(dir + "/o")
    #expect((report["policy"] as! [String: Any])["lineage"] as? Bool == true)
    let outputs = report["outputs"] as! [[String: Any]]
    let lineage = try #require(
      outputs.first { $0["path"] as? String == "lineage/a.jsonl" + suffix })
    #expect(lineage["kind"] as? String == "lineage")
    #expect(lineage["records"] as? Int == 5)
    #expect(lineage["sha256"] as? String == sha256Hex(readBytes(path)))
    #expect(outputs.contains { $0["kind"] as? String == "kept" })
    #expect(outputs.contains { $0["kind"] as? String == "quarantine" })
  }

  /// Lineage bytes do not depend on the thread count, and --resume reuses them only with
  /// lineage still on.
  @Test func lineageIsDeterministicAndResumable() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 20_000)
    let base = [
      "filter", "--quiet", "--lineage", "--consent", dir + "/" + w.consent, "--jurisdictions",
      dir + "/" + w.jurisdictions, "--cutoff", "2026-01-01T00:00:00Z", dir + "/" + w.exports[0],
    ]
    #expect(cg(base + ["--out", dir + "/t1", "--threads", "1"]).status == 0)
    #expect(cg(base + ["--out", dir + "/t2", "--threads", "2"]).status == 0)
    let name = "lineage/posts.jsonl.gz"
    #expect(readBytes(dir + "/t1/" + name) == readBytes(dir + "/t2/" + name))
    // The lineage counts add up to the kept records.
    let total = String(decoding: gunzip(dir + "/t1/" + name), as: UTF8.self)
      .split(separator: "\n").map { line -> Int in
        Int(line.split(separator: ":").last!.dropLast())!
      }.reduce(0, +)
    let kept = (try reportJSON(dir + "/t1")["totals"] as! [String: Any])["kept"] as! Int
    #expect(total == kept)
    #expect(cg(base + ["--out", dir + "/t1", "--resume"]).status == 0)
    let inputs = try reportJSON(dir + "/t1")["inputs"] as! [[String: Any]]
    #expect(inputs[0]["resumed"] as? Bool == true)
    // Without --lineage the policy differs: redone, and the lineage files go.
    let plain = base.filter { $0 != "--lineage" }
    #expect(cg(plain + ["--out", dir + "/t1", "--resume"]).status == 0)
    #expect(!FileManager.default.fileExists(atPath: dir + "/t1/" + name))
  }

  @Test func affectedAnswersFromLineage() throws {
    let dir = temporaryFolder()
    let args = corpus(dir) + ["--out", dir + "/o"]
    #expect(cg(args + [dir + "/a.jsonl", dir + "/b.jsonl"]).status == 0)
    writeFile(dir + "/users", "a\r\n  \t\n17\nnobody\nq\"uote\\back\u{01}\n")
    let r = cg(["affected", "--corpus", dir + "/o", "--users", dir + "/users", "--json"])
    #expect(r.status == 4)
    let answer = try #require(
      try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any])
    let files = answer["files"] as! [[String: Any]]
    #expect(files.count == 1)
    #expect(files[0]["path"] as? String == "kept/a.jsonl.gz")
    #expect(files[0]["users"] as? Int == 3)
    #expect(files[0]["records"] as? Int == 5)
    #expect(answer["users_held"] as? Int == 3)
    #expect(answer["records"] as? Int == 5)
    // Nobody held: exit 0. The dropped user is in no kept file.
    #expect(cg(["affected", "--corpus", dir + "/o", "--user", "dropped"]).status == 0)
    #expect(cg(["affected", "--corpus", dir + "/o", "--user", "nobody", "--json"]).status == 0)
    // A users file with a line that is not UTF-8 is a usage error naming the line.
    writeFile(dir + "/bad", [0x61, 0x0A, 0xFF, 0x0A])
    let bad = cg(["affected", "--corpus", dir + "/o", "--users", dir + "/bad"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains(":2"))
  }

  @Test func affectedRefusesWithoutMatchingLineage() throws {
    let dir = temporaryFolder()
    let args = corpus(dir)
    #expect(
      cg(args.filter { $0 != "--lineage" } + ["--out", dir + "/plain", dir + "/a.jsonl"]).status
        == 0)
    #expect(cg(["affected", "--corpus", dir + "/plain", "--user", "a"]).status == 2)
    #expect(cg(args + ["--out", dir + "/o", dir + "/a.jsonl"]).status == 0)
    // A lineage file changed after the report: refused, not answered.
    let path = dir + "/o/lineage/a.jsonl.gz"
    writeFile(path, gzipMember(Array(#"{"user_id":"a","records":1}"#.utf8) + [0x0A]))
    let r = cg(["affected", "--corpus", dir + "/o", "--user", "a"])
    #expect(r.status == 2)
    #expect(r.stderr.contains("lineage/a.jsonl.gz"))
  }

  /// Gzip lineage is written as small members headed by their size and first id, and
  /// `affected` inflates only the members whose range holds a queried id: its answers must
  /// equal a plain merge for ids at members' edges, between members, before the first and
  /// after the last, and for a file read whole (`--compression none`).
  @Test(arguments: ["gzip", "none"])
  func affectedOverManyMembersAnswersAsAPlainMerge(_ compression: String) throws {
    let dir = temporaryFolder("members-\(compression)")
    var lines: [String] = []
    var ids: [String] = []
    for k in 0..<6_000 where k % 3 != 1 {
      let id = String(format: "u%05d", k)
      ids.append(id)
      for _ in 0..<(1 + k % 2) { lines.append(#"{"user_id":"\#(id)"}"#) }
    }
    writeFile(dir + "/in.jsonl", lines.joined(separator: "\n") + "\n")
    #expect(
      cg([
        "filter", "--quiet", "--lineage", "--unknown-jurisdiction", "allow", "--compression",
        compression, "--cutoff", "2026-01-01T00:00:00Z", "--out", dir + "/o", dir + "/in.jsonl",
      ]).status == 0)
    let suffix = compression == "gzip" ? ".gz" : ""
    let path = dir + "/o/lineage/in.jsonl" + suffix
    let raw = readBytes(path)
    // The text is the same as ever, in one gzip stream.
    let text = String(decoding: compression == "gzip" ? gunzip(path) : raw, as: UTF8.self)
    #expect(text.split(separator: "\n").count == ids.count)
    if compression == "gzip" {
      // Members with the CG field: their sizes chain through the file, first ids ascend.
      var at = 0
      var firsts: [String] = []
      while at < raw.count {
        #expect(raw[at] == 0x1F && raw[at + 1] == 0x8B && raw[at + 3] == 0x04)
        #expect(raw[at + 12] == UInt8(ascii: "C") && raw[at + 13] == UInt8(ascii: "G"))
        let size = (0..<4).reduce(0) { $0 | Int(raw[at + 16 + $1]) << (8 * $1) }
        let idLength = Int(raw[at + 20]) | Int(raw[at + 21]) << 8
        firsts.append(
          String(decoding: raw[(at + 22)..<(at + 22 + idLength)], as: UTF8.self))
        at += size
      }
      #expect(at == raw.count)
      #expect(firsts.count > 20)
      #expect(firsts == firsts.sorted() && firsts.first == ids.first)
    }
    var rng = SplitMix64(seed: 11)
    for round in 0..<8 {
      var query: Set<String> = ["u00000", "u05999", "u06000", "a", "z", "u00001"]
      for _ in 0..<(1 + round * 5) {
        query.insert(String(format: "u%05d", Int(rng.next() % 6_100)))
      }
      writeFile(dir + "/users", query.sorted().joined(separator: "\n") + "\n")
      let r = cg(["affected", "--corpus", dir + "/o", "--users", dir + "/users", "--json"])
      let held = query.filter { ids.contains($0) }
      let records = held.reduce(0) { $0 + 1 + Int($1.dropFirst())! % 2 }
      #expect(r.status == (held.isEmpty ? 0 : 4))
      let answer = try #require(
        try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any])
      #expect(answer["users_held"] as? Int == held.count, "round \(round)")
      #expect(answer["records"] as? Int == records, "round \(round)")
    }
    // A member changed after the report is refused by its hash, whatever is queried.
    var tampered = raw
    tampered[tampered.count / 2] ^= 0x01
    writeFile(path, tampered)
    let r = cg(["affected", "--corpus", dir + "/o", "--user", "zzz"])
    #expect(r.status == 2)
    #expect(r.stderr.contains("lineage/in.jsonl" + suffix))
  }
}
