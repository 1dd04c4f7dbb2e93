import Foundation
import Testing

@testable import ConsentGate

let fixtures =
  URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures"

func cg(_ args: [String], stdin: [UInt8]? = nil) -> (status: Int32, stdout: [UInt8], stderr: String)
{
  runProcess(consentgateBinary, args, stdin: stdin)
}

func gunzip(_ path: String) -> [UInt8] {
  shell("gzip -dc '\(path)'").stdout
}

func reportJSON(_ dir: String) throws -> [String: Any] {
  let data = try #require(FileManager.default.contents(atPath: dir + "/report.json"))
  return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// A small ledger/tags pair and records for end-to-end runs.
func smallCorpus(_ dir: String) -> [String] {
  writeFile(
    dir + "/consent.csv",
    "user_id,purpose,status,recorded_at\nu1,ai_training,granted,2024-01-01T00:00:00Z\n")
  writeFile(dir + "/tags.csv", "user_id,country\nu1,DE\nu2,DE\nu3,US\n")
  return [
    "--consent", dir + "/consent.csv", "--jurisdictions", dir + "/tags.csv",
    "--cutoff", "2025-01-01T00:00:00Z", "--quiet",
  ]
}

let smallRecords = """
  {"user_id":"u1","text":"kept"}
  {"user_id":"u2","text":"dropped"}
  {"user_id":"u3","text":"kept too"}
  {"user_id":"u4","text":"unknown"}

  """

/// A synthetic export, ledger and tags from `generate`, written into `dir`.
func generatedExport(_ dir: String, records: Int, users: Int = 1_000) throws
  -> ExportGenerator.Written
{
  var options = ExportGenerator.Options()
  options.records = records
  options.users = users
  return try ExportGenerator(options: options).write(to: dir)
}

@Suite(.serialized) struct EndToEndTests {
  @Test func fixturesMatchExpectedOutputsAndCounts() throws {
    let out = temporaryFolder()
    let r = cg([
      "filter", "--policy", fixtures + "/policy.json", "--out", out, "--quiet",
      fixtures + "/posts-a.jsonl", fixtures + "/posts-b.jsonl.gz",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    for name in ["posts-a.jsonl", "posts-b.jsonl"] {
      #expect(gunzip("\(out)/kept/\(name).gz") == readBytes("\(fixtures)/expected/kept/\(name)"))
      #expect(
        gunzip("\(out)/quarantine/\(name).gz")
          == readBytes("\(fixtures)/expected/quarantine/\(name)"))
    }
    let report = try reportJSON(out)
    let expected = try #require(
      try JSONSerialization.jsonObject(
        with: FileManager.default.contents(atPath: fixtures + "/expected/report-counts.json")!)
        as? [String: Any])
    #expect(
      NSDictionary(dictionary: report["reasons"] as! [String: Any]).isEqual(
        to: expected["reasons"] as! [String: Any]))
    #expect(
      NSDictionary(dictionary: report["totals"] as! [String: Any]).isEqual(
        to: expected["totals"] as! [String: Any]))
    let reasons = report["reasons"] as! [String: Int]
    #expect(Set(reasons.keys) == Set(Reason.allCases.map(\.code)))
    // Every code but the two of SPEC §13, whose options are not built yet.
    #expect(
      reasons.filter {
        ![Reason.childConsentInvalid, .thirdPartyData].map(\.code).contains($0.key)
      }
      .values.allSatisfy { $0 > 0 }, "the fixtures cover every reason code")
  }

  @Test func reportKeysAndInvariant() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let r = cg(["filter", "--out", dir + "/out", dir + "/a.jsonl"] + smallCorpus(dir))
    #expect(r.status == 0, "\(r.stderr)")
    let report = try reportJSON(dir + "/out")
    for key in [
      "tool", "policy", "policy_sha256", "cutoff", "inputs", "consent", "jurisdictions", "totals",
      "reasons", "jurisdiction", "outputs", "warnings", "started_at", "finished_at", "threads",
    ] {
      #expect(report[key] != nil, "missing \(key)")
    }
    let input = (report["inputs"] as! [[String: Any]])[0]
    let records = input["records"] as! Int
    #expect(records == 4)
    #expect(
      records == (input["kept"] as! Int) + (input["dropped"] as! Int)
        + (input["quarantined"] as! Int))
    #expect(report["cutoff"] as? String == "2025-01-01T00:00:00Z")
    let policy = report["policy"] as! [String: Any]
    for excluded in ["out", "threads", "quiet", "policy", "consent", "jurisdictions"] {
      #expect(policy[excluded] == nil)
    }
    let canonical = try JSONSerialization.data(
      withJSONObject: policy, options: [.sortedKeys, .withoutEscapingSlashes])
    #expect(report["policy_sha256"] as? String == sha256Hex(Array(canonical)))
    #expect(
      gunzip(dir + "/out/kept/a.jsonl.gz")
        == Array(
          "{\"user_id\":\"u1\",\"text\":\"kept\"}\n{\"user_id\":\"u3\",\"text\":\"kept too\"}\n"
            .utf8))
    let outputs = report["outputs"] as! [[String: Any]]
    #expect(outputs.map { $0["path"] as! String } == ["kept/a.jsonl.gz", "quarantine/a.jsonl.gz"])
    #expect(outputs[0]["sha256"] as? String == sha256Hex(readBytes(dir + "/out/kept/a.jsonl.gz")))
  }

  @Test(arguments: ["1", "2"])
  func inputHashesCoverEachWholeFile(threads: String) throws {
    let dir = temporaryFolder()
    var big = ""
    for i in 0..<30_000 { big += "{\"user_id\":\"u\(i % 5)\",\"n\":\(i)}\n" }
    writeFile(dir + "/a.jsonl.gz", gzipMember(Array(big.utf8)))
    writeFile(dir + "/b.jsonl", smallRecords)
    let whole = gzipMember(Array(big.utf8))
    writeFile(dir + "/c.gz", Array(whole[0..<(whole.count / 2)]))
    let r = cg(
      [
        "filter", "--out", dir + "/o", "--threads", threads, dir + "/a.jsonl.gz", dir + "/c.gz",
        dir + "/b.jsonl",
      ]
        + smallCorpus(dir))
    #expect(r.status == 2)
    let inputs = try reportJSON(dir + "/o")["inputs"] as! [[String: Any]]
    for (input, name) in zip(inputs, ["a.jsonl.gz", "c.gz", "b.jsonl"]) {
      #expect(input["sha256"] as? String == sha256Hex(readBytes(dir + "/" + name)), "\(name)")
      #expect(input["bytes_compressed"] as? Int == readBytes(dir + "/" + name).count)
    }
  }

  @Test func exitZeroWithEmptyInputWritesEmptyMembers() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/empty.jsonl", "")
    let r = cg(["filter", "--out", dir + "/out", "--quiet", dir + "/empty.jsonl"])
    #expect(r.status == 0)
    for sub in ["kept", "quarantine"] {
      let path = "\(dir)/out/\(sub)/empty.jsonl.gz"
      #expect(shell("gzip -t \(path)").status == 0)
      #expect(gunzip(path).isEmpty)
    }
  }

  @Test func truncatedInputBesideAGoodOne() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/good.jsonl", smallRecords)
    let whole = gzipMember(Array(smallRecords.utf8))
    writeFile(dir + "/cut.jsonl.gz", Array(whole[0..<(whole.count - 5)]))
    let r = cg(
      ["filter", "--out", dir + "/out", dir + "/cut.jsonl.gz", dir + "/good.jsonl"]
        + smallCorpus(dir))
    #expect(r.status == 2)
    #expect(r.stderr.contains("cut.jsonl.gz"))
    #expect(FileManager.default.fileExists(atPath: dir + "/out/kept/good.jsonl.gz"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/out/kept/cut.jsonl.gz"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/out/quarantine/cut.jsonl.gz"))
    let inputs = try reportJSON(dir + "/out")["inputs"] as! [[String: Any]]
    #expect(inputs.map { $0["status"] as! String } == ["truncated", "ok"])
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/out/kept")
    #expect(leftovers == ["good.jsonl.gz"])
  }

  @Test func unreadableAndDirectoryInputsAreUnreadable() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/good.jsonl", smallRecords)
    try FileManager.default.createDirectory(
      atPath: dir + "/folder.jsonl", withIntermediateDirectories: true)
    let r = cg(
      [
        "filter", "--out", dir + "/out", dir + "/missing.jsonl", dir + "/folder.jsonl",
        dir + "/good.jsonl",
      ] + smallCorpus(dir))
    #expect(r.status == 2)
    let inputs = try reportJSON(dir + "/out")["inputs"] as! [[String: Any]]
    #expect(inputs.map { $0["status"] as! String } == ["unreadable", "unreadable", "ok"])
  }

  @Test func quarantineRatioExitThree() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let r = cg(
      ["filter", "--out", dir + "/out", "--max-quarantine-ratio", "0.2", dir + "/a.jsonl"]
        + smallCorpus(dir))
    #expect(r.status == 3)
    #expect(FileManager.default.fileExists(atPath: dir + "/out/report.json"))
    let ok = cg(
      ["filter", "--out", dir + "/out2", "--max-quarantine-ratio", "0.25", dir + "/a.jsonl"]
        + smallCorpus(dir))
    #expect(ok.status == 0)
    writeFile(dir + "/none.jsonl", "\n\n")
    let zero = cg([
      "filter", "--out", dir + "/out3", "--max-quarantine-ratio", "0", dir + "/none.jsonl",
    ])
    #expect(zero.status == 0)
  }

  @Test func dataErrorBeatsQuarantineRatio() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/bad.gz", [0x1f, 0x8b, 0x08])
    let r = cg(
      [
        "filter", "--out", dir + "/out", "--max-quarantine-ratio", "0", dir + "/a.jsonl",
        dir + "/bad.gz",
      ] + smallCorpus(dir))
    #expect(r.status == 2)
  }

  @Test(arguments: [
    [String](), ["--protect", "europe"], ["--level", "10"], ["--cutoff", "2025-01-01"],
    ["--unknown-jurisdiction", "maybe"], ["--user-id-path", "user_id"], ["--resume"],
  ])
  func usageErrorsExit64(_ extra: [String]) throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    let r = cg(["filter", "--out", dir + "/out", "--quiet", dir + "/a.jsonl"] + extra)
    if extra.isEmpty {
      #expect(r.status == 0)
      #expect(cg(["filter", dir + "/a.jsonl"]).status == 64)
      #expect(cg(["filter", "--out", dir + "/out"]).status == 64)
    } else {
      #expect(r.status == 64, "\(extra)")
    }
  }

  @Test func policyFileErrorsAreUsageErrors() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/bad.json", #"{"purpose":"ai_training","colour":"blue"}"#)
    #expect(
      cg(["filter", "--policy", dir + "/bad.json", "--out", dir + "/o", dir + "/a.jsonl"]).status
        == 64)
    #expect(
      cg(["filter", "--policy", dir + "/missing.json", "--out", dir + "/o", dir + "/a.jsonl"])
        .status == 64)
    writeFile(dir + "/broken.json", "{")
    #expect(
      cg(["filter", "--policy", dir + "/broken.json", "--out", dir + "/o", dir + "/a.jsonl"]).status
        == 64)
  }

  @Test func commandLineOverridesPolicyFile() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/p.json", #"{"protect":["all"],"purpose":"ads","level":1}"#)
    let r = cg(
      [
        "filter", "--policy", dir + "/p.json", "--purpose", "ai_training", "--out", dir + "/o",
        "--quiet", dir + "/a.jsonl",
      ] + smallCorpus(dir))
    #expect(r.status == 0)
    let policy = try reportJSON(dir + "/o")["policy"] as! [String: Any]
    #expect(policy["purpose"] as? String == "ai_training")
    #expect(policy["protect"] as? [String] == ["all"])
    #expect(policy["level"] as? Int == 1)
  }

  @Test func collidingOutputNamesAreAUsageError() throws {
    let dir = temporaryFolder()
    try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/a.jsonl.gz", gzipMember(Array(smallRecords.utf8)))
    writeFile(dir + "/x/a.jsonl", smallRecords)
    #expect(
      cg(["filter", "--out", dir + "/o", dir + "/a.jsonl", dir + "/a.jsonl.gz"]).status == 64)
    #expect(cg(["filter", "--out", dir + "/o", dir + "/a.jsonl", dir + "/x/a.jsonl"]).status == 64)
    #expect(!FileManager.default.fileExists(atPath: dir + "/o/report.json"))
  }

  @Test func stdinIsNamedStdinJsonl() throws {
    let dir = temporaryFolder()
    let r = cg(
      ["filter", "--out", dir + "/o", "-"] + smallCorpus(dir),
      stdin: gzipMember(Array(smallRecords.utf8)))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(gunzip(dir + "/o/kept/stdin.jsonl.gz").count > 0)
    let q = String(decoding: gunzip(dir + "/o/quarantine/stdin.jsonl.gz"), as: UTF8.self)
    #expect(q.hasPrefix(#"{"source":"-","line":4,"reason":"unknown_jurisdiction","record":"#))
  }

  @Test func uncompressedOutputIsTheInputBytes() throws {
    let dir = temporaryFolder()
    writeFile(
      dir + "/a.jsonl",
      [0xEF, 0xBB, 0xBF] + Array("  {\"user_id\":\"u3\"}\t\r\n{\"user_id\":\"u1\"}\r\r\n".utf8))
    let r = cg(
      ["filter", "--out", dir + "/o", "--compression", "none", dir + "/a.jsonl"] + smallCorpus(dir))
    #expect(r.status == 0)
    #expect(
      readBytes(dir + "/o/kept/a.jsonl")
        == Array("  {\"user_id\":\"u3\"}\t\n{\"user_id\":\"u1\"}\r\n".utf8))
  }

  @Test func fatalLedgerErrorWritesNothing() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(
      dir + "/bad.csv",
      "user_id,purpose,status,recorded_at\nu1,ai_training,perhaps,2024-01-01T00:00:00Z\n")
    let r = cg(["filter", "--out", dir + "/o", "--consent", dir + "/bad.csv", dir + "/a.jsonl"])
    #expect(r.status == 2)
    #expect(r.stderr.contains("bad.csv:2"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/o/report.json"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/o/kept/a.jsonl.gz"))
  }

  @Test func outputThatCannotBeWrittenExits74() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/notadir", "x")
    let r = cg(["filter", "--out", dir + "/notadir/o", "--quiet", dir + "/a.jsonl"])
    #expect(r.status == 74)
  }

  @Test func outputBytesIdenticalForAnyThreadCount() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 20_000, users: 2_000)
    var hashes: [[String]] = []
    for threads in ["1", "2", "4"] {
      let out = dir + "/out" + threads
      let r = cg([
        "filter", "--out", out, "--threads", threads, "--consent", dir + "/" + w.consent,
        "--jurisdictions", dir + "/" + w.jurisdictions, "--cutoff", "2026-01-01T00:00:00Z",
        "--quiet",
        dir + "/" + w.exports[0],
      ])
      #expect(r.status == 0)
      hashes.append(
        ["kept", "quarantine"].map { sha256Hex(readBytes("\(out)/\($0)/posts.jsonl.gz")) })
    }
    #expect(hashes[0] == hashes[1])
    #expect(hashes[0] == hashes[2])
  }

  @Test func recordContentNeverReachesStderr() throws {
    let dir = temporaryFolder()
    let marker = "MARKER-7f3a9c"
    var bytes = Array(
      "{\"user_id\":\"\(marker)\",\"x\":\n{\"user_id\":\"\(marker)\"\n{\"\(marker)\":1,\"\(marker)\":1}\n"
        .utf8)
    bytes += Array("{\"user_id\":\"\(marker)\",\"t\":\"".utf8) + [0xFF] + Array("\"}\n".utf8)
    writeFile(dir + "/a.jsonl", bytes)
    let whole = gzipMember(bytes)
    writeFile(dir + "/cut.gz", Array(whole[0..<(whole.count / 2)]))
    writeFile(
      dir + "/ledger.csv",
      "user_id,purpose,status,recorded_at\n\(marker),ai_training,\(marker),\(marker)\n")
    let runs = [
      cg(["filter", "--out", dir + "/o", dir + "/a.jsonl", dir + "/cut.gz"]),
      cg(["filter", "--out", dir + "/o2", "--consent", dir + "/ledger.csv", dir + "/a.jsonl"]),
      cg([
        "filter", "--out", dir + "/o3", "--lenient-ledger", "--consent", dir + "/ledger.csv",
        "--max-record-bytes", "5", dir + "/a.jsonl",
      ]),
      cg(["explain", "--user", "someone", "--consent", dir + "/ledger.csv"]),
    ]
    for r in runs { #expect(!r.stderr.contains(marker), "\(r.stderr)") }
    #expect(runs[0].status == 2)
  }

  @Test func killedRunLeavesNoPartialFileUnderAFinalName() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 60_000, users: 5_000)
    let args = [
      "filter", "--consent", dir + "/" + w.consent, "--jurisdictions", dir + "/" + w.jurisdictions,
      "--cutoff", "2026-01-01T00:00:00Z", "--quiet", dir + "/" + w.exports[0],
    ]
    #expect(cg(args + ["--out", dir + "/ref"]).status == 0)
    let reference = ["kept", "quarantine"].map { readBytes(dir + "/ref/\($0)/posts.jsonl.gz") }
    let out = dir + "/killed"
    for attempt in 0..<20 {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: consentgateBinary)
      process.arguments = args + ["--out", out]
      try process.run()
      usleep(UInt32(30_000 + attempt * 25_000))
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      // Whatever exists under a final name is complete.
      for (k, sub) in ["kept", "quarantine"].enumerated() {
        let final = "\(out)/\(sub)/posts.jsonl.gz"
        if FileManager.default.fileExists(atPath: final) {
          #expect(readBytes(final) == reference[k], "attempt \(attempt) \(sub)")
        }
      }
      // A rerun into the same folder gives the reference bytes.
      if attempt % 4 == 3 {
        #expect(cg(args + ["--out", out]).status == 0)
        for (k, sub) in ["kept", "quarantine"].enumerated() {
          #expect(
            readBytes("\(out)/\(sub)/posts.jsonl.gz") == reference[k], "rerun \(attempt) \(sub)")
        }
      }
    }
  }

  /// The library example of the README, kept compiling and working.
  @Test func readmeLibraryExample() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/posts.jsonl", smallRecords)
    _ = smallCorpus(dir)
    var settings = PolicySettings()
    settings.cutoff = "2025-06-01T00:00:00Z"
    settings.countryPath = ["/geo/country"]
    let policy = try settings.policy(runStart: .now())

    var config = FilterConfiguration(
      policy: policy, inputs: [dir + "/posts.jsonl"], outputDirectory: dir + "/out")
    config.consentFiles = [dir + "/consent.csv"]
    config.jurisdictionFiles = [dir + "/tags.csv"]
    let (report, outcome) = try Filter(configuration: config).run()
    #expect(report.totals.kept == 2)
    #expect(outcome.exitCode == 0)
  }

  /// A crash is reported as exit 70, and like any stop it leaves no partial final file.
  @Test func crashExitsSeventy() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 40_000)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: consentgateBinary)
    process.arguments = [
      "filter", "--quiet", "--out", dir + "/o", "--consent", dir + "/" + w.consent,
      dir + "/" + w.exports[0],
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    usleep(150_000)
    kill(process.processIdentifier, SIGSEGV)
    process.waitUntilExit()
    #expect(process.terminationStatus == 70)
    #expect(!FileManager.default.fileExists(atPath: dir + "/o/kept/posts.jsonl.gz"))
  }

  /// A write that fails (here the file-size limit, as a full disk would) exits 74 and
  /// leaves no file of that input under a final name; the report is still written.
  @Test func failedWriteExits74WithoutPartialFiles() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 3_000)
    let r = shell(
      "ulimit -f 200; exec '\(consentgateBinary)' filter --quiet --compression none --out '\(dir)/o' "
        + "--protect all --unknown-jurisdiction allow '\(dir)/\(w.exports[0])' --consent '\(dir)/\(w.consent)'"
    )
    #expect(r.status == 74, "\(r.stderr)")
    #expect(r.stderr.contains("cannot write"))
    let kept = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/o/kept")) ?? []
    #expect(kept.isEmpty, "\(kept)")
    #expect(FileManager.default.fileExists(atPath: dir + "/o/report.json"))
  }

  /// A real full disk: a 1 MiB tmpfs as the output folder (needs root, as CI has).
  @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
  func fullDiskExits74WithoutPartialFiles() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 3_000)
    try FileManager.default.createDirectory(atPath: dir + "/o", withIntermediateDirectories: true)
    try #require(shell("mount -t tmpfs -o size=1M tmpfs '\(dir)/o'").status == 0)
    defer { shell("umount '\(dir)/o'") }
    let r = cg([
      "filter", "--quiet", "--compression", "none", "--out", dir + "/o", "--protect", "all",
      "--consent", dir + "/" + w.consent, dir + "/" + w.exports[0],
    ])
    #expect(r.status == 74, "\(r.stderr)")
    #expect(r.stderr.contains("No space left on device"))
    let kept = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/o/kept")) ?? []
    #expect(kept.isEmpty, "\(kept)")
  }

  /// The ledger is read once, before any record: changing or deleting it during the run
  /// changes nothing, and the report's SHA-256 is of the bytes that were used.
  @Test func ledgerChangedDuringTheRunIsReportedAsUsed() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 40_000)
    let ledger = dir + "/" + w.consent
    let original = readBytes(ledger)
    let args = [
      "filter", "--quiet", "--cutoff", "2026-01-01T00:00:00Z", "--consent", ledger,
      "--jurisdictions", dir + "/" + w.jurisdictions, dir + "/" + w.exports[0],
    ]
    #expect(cg(args + ["--out", dir + "/ref"]).status == 0)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: consentgateBinary)
    process.arguments = args + ["--out", dir + "/o"]
    try process.run()
    usleep(700_000)
    writeFile(ledger, "user_id,purpose,status,recorded_at\n")
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let consent = try reportJSON(dir + "/o")["consent"] as! [[String: Any]]
    #expect(consent[0]["sha256"] as? String == sha256Hex(original))
    #expect(
      readBytes(dir + "/o/kept/posts.jsonl.gz") == readBytes(dir + "/ref/kept/posts.jsonl.gz"))
  }

  @Test func resumeKeepsCompletedInputsAndRedoesChangedOnes() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", smallRecords)
    writeFile(dir + "/b.jsonl", smallRecords)
    let base =
      ["filter", "--out", dir + "/o", dir + "/a.jsonl", dir + "/b.jsonl"] + smallCorpus(dir)
    #expect(cg(base).status == 0)
    writeFile(dir + "/b.jsonl", smallRecords + "{\"user_id\":\"u3\"}\n")
    #expect(cg(base + ["--resume"]).status == 0)
    let inputs = try reportJSON(dir + "/o")["inputs"] as! [[String: Any]]
    #expect(inputs[0]["resumed"] as? Bool == true)
    #expect(inputs[1]["resumed"] == nil)
    #expect(inputs[1]["records"] as? Int == 5)
    #expect(gunzip(dir + "/o/kept/b.jsonl.gz").count > gunzip(dir + "/o/kept/a.jsonl.gz").count)
    let warnings = try reportJSON(dir + "/o")["warnings"] as! [String]
    #expect(warnings.contains { $0.contains("b.jsonl") && $0.contains("input changed") })
    // A changed policy redoes everything, and says so.
    #expect(cg(base + ["--resume", "--purpose", "ads"]).status == 0)
    let redone = try reportJSON(dir + "/o")
    #expect((redone["inputs"] as! [[String: Any]]).allSatisfy { $0["resumed"] == nil })
    #expect((redone["warnings"] as! [String]).filter { $0.contains("policy changed") }.count == 2)
  }

  @Test func explainShowsEventsSignalsAndDecision() throws {
    let dir = temporaryFolder()
    let args = smallCorpus(dir).filter { $0 != "--quiet" }
    let text = cg(["explain", "--user", "u1"] + args)
    #expect(text.status == 0)
    #expect(String(decoding: text.stdout, as: UTF8.self).contains("decision: keep (consented)"))
    let json = cg(["explain", "--user", "u2", "--json"] + args)
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout)) as! [String: Any]
    #expect(object["reason"] as? String == "no_consent")
    #expect((object["jurisdiction_signals"] as! [Any]).count == 1)
    let unknown = cg(["explain", "--user", "nobody", "--json"] + args)
    #expect(unknown.status == 0)
  }

  @Test func generateIsDeterministic() throws {
    let dir = temporaryFolder()
    for run in ["a", "b"] {
      #expect(
        cg([
          "generate", "--records", "500", "--users", "50", "--seed", "3", "--out", dir + "/" + run,
        ]).status == 0)
    }
    for f in ["posts.jsonl.gz", "consent.csv", "jurisdictions.csv"] {
      #expect(readBytes("\(dir)/a/\(f)") == readBytes("\(dir)/b/\(f)"))
    }
  }
}
