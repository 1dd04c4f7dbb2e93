import Crypto
import Foundation
import Testing

@testable import ConsentGate

#if canImport(Glibc)
  import Glibc
#endif

/// SPEC §8: the output folder may be shared, re-used and half-written. Each test plants what
/// a hostile neighbour or a tired operator would leave, and checks that nothing outside DIR
/// is touched and nothing unproven is reused.
@Suite(.serialized) struct OutputSafetyTests {
  private func isLink(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
  }

  private func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
  }

  private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
  }

  // MARK: temporary and final names

  /// The old scheme named temporaries `.NAME.tmp-PID`: a link planted there was written
  /// through. Now the name is random and the open exclusive.
  @Test func linkAtThePidTemporaryNameIsNotWrittenThrough() throws {
    let dir = temporaryFolder()
    let victim = writeFile(dir + "/victim", "precious\n")
    try FileManager.default.createDirectory(atPath: dir + "/o", withIntermediateDirectories: true)
    symlink(victim, dir + "/o/.report.json.tmp-\(getpid())")
    try writeAtomically(Array("new\n".utf8), to: "report.json", in: OutputFolder(path: dir + "/o"))
    #expect(readBytes(victim) == Array("precious\n".utf8))
    #expect(isRegularFile(dir + "/o/report.json"))
    #expect(readBytes(dir + "/o/report.json") == Array("new\n".utf8))
  }

  /// Whatever name the random part draws, a file or link already there is never opened:
  /// the draw is repeated until a name is free.
  @Test func plantedEntriesAtCandidateTemporaryNamesAreSkipped() throws {
    let dir = temporaryFolder()
    let victim = writeFile(dir + "/victim", "precious\n")
    try FileManager.default.createDirectory(atPath: dir + "/o", withIntermediateDirectories: true)
    symlink(victim, dir + "/o/.kept.gz.tmp-1")
    symlink(dir + "/missing-target", dir + "/o/.kept.gz.tmp-2")
    writeFile(dir + "/o/.kept.gz.tmp-3", "planted\n")
    var draws: [UInt64] = [1, 2, 3, 4]
    let folder = try OutputFolder(path: dir + "/o")
    let (fd, name) = try folder.createTemporary(for: "kept.gz") { draws.removeFirst() }
    #expect(name == ".kept.gz.tmp-4")
    #expect(write(fd, "x", 1) == 1)
    close(fd)
    #expect(readBytes(victim) == Array("precious\n".utf8))
    #expect(!exists(dir + "/missing-target"))
    #expect(readBytes(dir + "/o/.kept.gz.tmp-3") == Array("planted\n".utf8))
  }

  /// A link at a final name (`report.json`, `kept/NAME`, `quarantine/NAME`, a completion
  /// record) is replaced by the new file, never written through, with or without --resume.
  @Test(arguments: [false, true])
  func linksAtFinalNamesAreReplaced(resume: Bool) throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir)
    for sub in ["kept", "quarantine", "_done"] {
      try FileManager.default.createDirectory(
        atPath: dir + "/o/" + sub, withIntermediateDirectories: true)
    }
    var victims: [String] = []
    for (k, final) in [
      "report.json", "kept/a.jsonl.gz", "quarantine/a.jsonl.gz", "_done/a.jsonl.gz.json",
    ]
    .enumerated() {
      let victim = writeFile(dir + "/victim\(k)", "precious \(k)\n")
      symlink(victim, dir + "/o/" + final)
      victims.append(victim)
    }
    #expect(cg(args + (resume ? ["--resume"] : [])).status == 0)
    for (k, victim) in victims.enumerated() {
      #expect(readBytes(victim) == Array("precious \(k)\n".utf8))
    }
    for final in ["report.json", "kept/a.jsonl.gz", "quarantine/a.jsonl.gz"] {
      #expect(isRegularFile(dir + "/o/" + final), "\(final)")
    }
    #expect(gunzip(dir + "/o/kept/a.jsonl.gz").count > 0)
  }

  // MARK: output folders that are links or files

  /// A linked output subfolder stops the run before anything is deleted: exit 74 naming
  /// it, the link's target untouched, the earlier report and outputs still there.
  @Test(arguments: ["kept", "quarantine", "_done", "lineage", "reports"])
  func linkedSubfolderStopsTheRunAndDeletesNothing(_ sub: String) throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir)
    #expect(cg(args).status == 0)
    let elsewhere = dir + "/elsewhere"
    try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
    writeFile(elsewhere + "/a.jsonl.gz", "not yours\n")
    writeFile(elsewhere + "/other", "not yours either\n")
    let target = dir + "/o/" + sub
    try? FileManager.default.removeItem(atPath: target)
    symlink(elsewhere, target)
    let before = readBytes(dir + "/o/report.json")
    let r = cg(args)
    #expect(r.status == 74)
    #expect(r.stderr.contains("/o/\(sub)"))
    #expect(readBytes(elsewhere + "/a.jsonl.gz") == Array("not yours\n".utf8))
    #expect(readBytes(elsewhere + "/other") == Array("not yours either\n".utf8))
    #expect((try? FileManager.default.contentsOfDirectory(atPath: elsewhere).count) == 2)
    #expect(readBytes(dir + "/o/report.json") == before)
    for other in ["kept", "quarantine"] where other != sub {
      #expect(exists(dir + "/o/\(other)/a.jsonl.gz"))
    }
  }

  /// `kept` as a plain file: the same refusal, before report.json or quarantine/ is touched.
  @Test func plainFileAtKeptStopsTheRunAndDeletesNothing() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir)
    #expect(cg(args).status == 0)
    try FileManager.default.removeItem(atPath: dir + "/o/kept")
    writeFile(dir + "/o/kept", "a file\n")
    let r = cg(args)
    #expect(r.status == 74)
    #expect(r.stderr.contains("/o/kept"))
    #expect(exists(dir + "/o/report.json"))
    #expect(exists(dir + "/o/quarantine/a.jsonl.gz"))
    #expect(readBytes(dir + "/o/kept") == Array("a file\n".utf8))
  }

  /// DIR itself may be a link: the user named it.
  @Test func outputFolderMayItselfBeALink() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    try FileManager.default.createDirectory(
      atPath: dir + "/real", withIntermediateDirectories: true)
    symlink(dir + "/real", dir + "/o")
    #expect(cg(["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir)).status == 0)
    #expect(isRegularFile(dir + "/real/kept/a.jsonl.gz"))
    #expect(isRegularFile(dir + "/real/report.json"))
  }

  /// Clearing removes entries of the output folders, a link as a link, and never descends.
  @Test func clearingRemovesLinksAsLinks() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir)
    #expect(cg(args).status == 0)
    let victim = writeFile(dir + "/victim", "precious\n")
    try FileManager.default.createDirectory(
      atPath: dir + "/elsewhere", withIntermediateDirectories: true)
    writeFile(dir + "/elsewhere/x", "x\n")
    symlink(victim, dir + "/o/kept/stale.gz")
    symlink(dir + "/elsewhere", dir + "/o/quarantine/folder-link")
    #expect(cg(args).status == 0)
    #expect(readBytes(victim) == Array("precious\n".utf8))
    #expect(readBytes(dir + "/elsewhere/x") == Array("x\n".utf8))
    #expect(!exists(dir + "/o/kept/stale.gz"))
    #expect(!exists(dir + "/o/quarantine/folder-link"))
  }

  // MARK: inputs inside the output folder

  /// Re-filtering last run's corpus into the same DIR would delete the input before it is
  /// read: a usage error, found before anything is deleted.
  @Test func inputInsideKeptIsAUsageError() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let corpus = smallCorpus(dir)
    #expect(cg(["filter", "--out", dir + "/o", dir + "/a.jsonl"] + corpus).status == 0)
    let kept = readBytes(dir + "/o/kept/a.jsonl.gz")
    // Through a path that names DIR by another spelling, too.
    symlink(dir + "/o", dir + "/alias")
    for input in [dir + "/o/kept/a.jsonl.gz", dir + "/alias/kept/../kept/a.jsonl.gz"] {
      let r = cg(["filter", "--out", dir + "/o", input] + corpus)
      #expect(r.status == 64)
      #expect(readBytes(dir + "/o/kept/a.jsonl.gz") == kept)
      #expect(exists(dir + "/o/report.json"))
    }
  }

  // MARK: resume

  /// Run 1 keeps u1's record; the input is re-exported truncated; --resume redoes it and
  /// fails: no file of that input is left under a final name, and the report lists none.
  @Test func resumeAfterAFailedRedoLeavesNothingOfThatInput() throws {
    let dir = temporaryFolder()
    let input = writeFile(dir + "/a.jsonl.gz", gzipMember(Array(smallRecords.utf8)))
    writeFile(dir + "/b.jsonl", smallRecords)
    let args =
      ["filter", "--out", dir + "/o", input, dir + "/b.jsonl"] + smallCorpus(dir) + ["--resume"]
    #expect(cg(args).status == 0)
    #expect(exists(dir + "/o/kept/a.jsonl.gz"))
    let whole = readBytes(input)
    writeFile(input, Array(whole[..<(whole.count - 5)]))
    #expect(cg(args).status == 2)
    for path in ["kept/a.jsonl.gz", "quarantine/a.jsonl.gz", "_done/a.jsonl.gz.json"] {
      #expect(!exists(dir + "/o/" + path), "\(path)")
    }
    let report = try reportJSON(dir + "/o")
    let outputs = (report["outputs"] as! [[String: Any]]).map { $0["path"] as! String }
    #expect(outputs == ["kept/b.jsonl.gz", "quarantine/b.jsonl.gz"])
    let inputs = report["inputs"] as! [[String: Any]]
    #expect(inputs[0]["status"] as? String == "truncated")
    #expect((inputs[0]["error"] as? String)?.isEmpty == false)
    #expect(inputs[1]["resumed"] as? Bool == true)
  }

  /// A kept file overwritten with other bytes of the same size is not reused: resume
  /// re-hashes, redoes the input, and the report's SHA-256 is the file's.
  @Test func resumeRehashesOutputsOfTheSameSize() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args =
      ["filter", "--out", dir + "/o", "--compression", "none", dir + "/a.jsonl"]
      + smallCorpus(dir) + ["--resume"]
    #expect(cg(args).status == 0)
    let kept = dir + "/o/kept/a.jsonl"
    let original = readBytes(kept)
    var tampered = original
    tampered[tampered.count - 2] ^= 0x01
    writeFile(kept, tampered)
    #expect(cg(args).status == 0)
    #expect(readBytes(kept) == original)
    let report = try reportJSON(dir + "/o")
    #expect((report["inputs"] as! [[String: Any]])[0]["resumed"] == nil)
    let outputs = report["outputs"] as! [[String: Any]]
    #expect(outputs[0]["sha256"] as? String == sha256Hex(readBytes(kept)))
    #expect((report["warnings"] as! [String]).contains { $0.contains("outputs") })
  }

  /// An edited completion record (its output list emptied) proves nothing: the input is
  /// redone.
  @Test func resumeRedoesAfterAnEditedCompletionRecord() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir) + ["--resume"]
    #expect(cg(args).status == 0)
    let recordPath = dir + "/o/_done/a.jsonl.gz.json"
    var record = try #require(
      try JSONSerialization.jsonObject(with: Data(readBytes(recordPath))) as? [String: Any])
    record["outputs"] = [[String: Any]]()
    writeFile(recordPath, Array(try JSONSerialization.data(withJSONObject: record)))
    #expect(cg(args).status == 0)
    let report = try reportJSON(dir + "/o")
    #expect((report["inputs"] as! [[String: Any]])[0]["resumed"] == nil)
    #expect((report["outputs"] as! [[String: Any]]).count == 2)
  }

  /// The same file moved from --consent to --jurisdictions has the same SHA-256, but its
  /// role changed the decisions: resume redoes the input.
  @Test func resumeRedoesWhenASideFileChangesRole() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    // One file that reads as a ledger and as tags.
    let both = writeFile(
      dir + "/both.csv",
      "user_id,purpose,status,recorded_at,country\nu1,ai_training,granted,2024-01-01T00:00:00Z,DE\n"
    )
    let base = [
      "filter", "--out", dir + "/o", dir + "/a.jsonl", "--cutoff", "2025-01-01T00:00:00Z",
      "--quiet", "--resume", "--unknown-jurisdiction", "protect",
    ]
    #expect(cg(base + ["--consent", both]).status == 0)
    let first = try reportJSON(dir + "/o")
    #expect((first["totals"] as! [String: Any])["kept"] as? Int == 1)
    #expect(cg(base + ["--jurisdictions", both]).status == 0)
    let second = try reportJSON(dir + "/o")
    #expect((second["inputs"] as! [[String: Any]])[0]["resumed"] == nil)
    #expect((second["totals"] as! [String: Any])["kept"] as? Int == 0)
  }

  /// After a run, kept/ and quarantine/ hold exactly this run's files: the same input
  /// written earlier under another compression is removed, under --resume too.
  @Test func filesUnderAnotherSuffixAreRemoved() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let base = ["filter", "--out", dir + "/o", dir + "/a.jsonl"] + smallCorpus(dir) + ["--resume"]
    #expect(cg(base + ["--compression", "none"]).status == 0)
    #expect(exists(dir + "/o/kept/a.jsonl"))
    #expect(cg(base).status == 0)
    let kept = try FileManager.default.contentsOfDirectory(atPath: dir + "/o/kept")
    let done = try FileManager.default.contentsOfDirectory(atPath: dir + "/o/_done")
    #expect(kept == ["a.jsonl.gz"])
    #expect(done == ["a.jsonl.gz.json"])
  }

  // MARK: times and policy

  /// A grant 10⁻³⁷ s after the cutoff is after it: every fraction digit counts, and the
  /// report's cutoff keeps them all.
  @Test func fractionDigitsPastTheThirtySixthCount() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", "{\"user_id\":\"u1\"}\n")
    let cutoff = "2025-01-01T00:00:00.0000000000000000000000000000000000001Z"
    writeFile(
      dir + "/consent.csv",
      "user_id,purpose,status,recorded_at\nu1,ai_training,granted,2025-01-01T00:00:00.00000000000000000000000000000000000011Z\n"
    )
    writeFile(dir + "/tags.csv", "user_id,country\nu1,DE\n")
    let r = cg([
      "filter", "--quiet", "--out", dir + "/o", "--cutoff", cutoff, "--consent",
      dir + "/consent.csv", "--jurisdictions", dir + "/tags.csv", dir + "/a.jsonl",
    ])
    #expect(r.status == 0)
    let report = try reportJSON(dir + "/o")
    #expect((report["reasons"] as! [String: Any])["no_consent"] as? Int == 1)
    #expect(report["cutoff"] as? String == cutoff)
    #expect((report["policy"] as! [String: Any])["cutoff"] as? String == cutoff)
  }

  /// A JSON array element is one item as written, commas and all (SPEC §7 "Options").
  @Test func policyListElementIsNotSplitAtCommas() throws {
    let dir = temporaryFolder()
    writeFile(
      dir + "/policy.json", #"{"notice_versions": ["privacy notice, 2024-06"], "protect": "eu,uk"}"#
    )
    let settings = try PolicySettings.load(policyFile: dir + "/policy.json")
    let policy = try settings.policy(runStart: testCutoff)
    #expect(policy.noticeVersions == ["privacy notice, 2024-06"])
    // A list given as one string is still split.
    #expect(policy.protection.items == ["eu", "uk"])
  }

  /// The report's `policy` is itself a policy file: given back as --policy it resolves to
  /// the same policy, so the same `policy_sha256`.
  @Test func reportPolicyIsAPolicyFile() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let args =
      [
        "filter", "--out", dir + "/o", dir + "/a.jsonl", "--max-quarantine-ratio", "0.75",
        "--notice-versions", "v1,v2", "--max-consent-age", "30",
      ] + smallCorpus(dir)
    #expect(cg(args).status == 0)
    let report = try reportJSON(dir + "/o")
    let policy = report["policy"] as! [String: Any]
    #expect(policy["lineage"] as? Bool == false)
    #expect(policy["max_quarantine_ratio"] as? Double == 0.75)
    #expect(policy["notice_versions"] as? [String] == ["v1", "v2"])
    writeFile(dir + "/policy.json", Array(try JSONSerialization.data(withJSONObject: policy)))
    let again = [
      "filter", "--quiet", "--out", dir + "/p", "--policy", dir + "/policy.json",
      "--consent", dir + "/consent.csv", "--jurisdictions", dir + "/tags.csv", dir + "/a.jsonl",
    ]
    #expect(cg(again).status == 0)
    #expect(
      try reportJSON(dir + "/p")["policy_sha256"] as? String == report["policy_sha256"] as? String)
    // An unset option is null, and null reads back as unset.
    #expect(cg(["filter", "--out", dir + "/q", dir + "/a.jsonl"] + smallCorpus(dir)).status == 0)
    let defaults = try reportJSON(dir + "/q")["policy"] as! [String: Any]
    #expect(defaults["max_quarantine_ratio"] is NSNull)
    #expect(defaults["notice_versions"] is NSNull)
  }
}
