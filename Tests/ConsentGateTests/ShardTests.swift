import Foundation
import Testing

@testable import ConsentGate

/// SPEC §10: shards chosen from the command line or the environment, shard runs that touch
/// only their own files, and `merge-reports`.
@Suite struct ShardChoiceTests {
  @Test(arguments: ["3/3", "a/2", "1/0", "-1/2", "1/2/3", " 1/2", "1/", "/2", "+1/2", "1.0/2"])
  func malformedShardIsAUsageError(_ text: String) {
    #expect(throws: UsageError.self) { try Shard.parse(text, from: "--shard") }
  }

  @Test func shardNamesItsReport() throws {
    let shard = try Shard.parse("7/12", from: "--shard")
    #expect(shard == (try Shard(index: 7, count: 12)))
    #expect(shard.reportName == "shard-00007-of-00012.json")
  }

  private func env(_ pairs: [String: String]) throws -> Shard {
    try Shard.fromEnvironment(pairs).0
  }

  private func refusal(_ pairs: [String: String]) -> String {
    do {
      _ = try Shard.fromEnvironment(pairs)
      return ""
    } catch {
      return error.message
    }
  }

  @Test func environmentOrderAndForms() throws {
    #expect(try env(["CONSENTGATE_SHARD": "1/4", "JOB_COMPLETION_INDEX": "3"]).index == 1)
    // A stepped Slurm array: tasks 1, 3, 5, 7 are shards 0–3.
    let slurm = [
      "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2",
      "SLURM_ARRAY_TASK_COUNT": "4",
    ]
    #expect(try env(slurm) == (try Shard(index: 2, count: 4)))
    var unstepped = slurm
    unstepped["SLURM_ARRAY_TASK_STEP"] = nil
    unstepped["SLURM_ARRAY_TASK_ID"] = "3"
    #expect(try env(unstepped) == (try Shard(index: 2, count: 4)))
    #expect(
      try env(["JOB_COMPLETION_INDEX": "2", "CONSENTGATE_SHARD_COUNT": "3"])
        == (try Shard(index: 2, count: 3)))
  }

  @Test func environmentRefusalsNameTheVariable() {
    // The first set variable decides, even when it is malformed and a later one is fine.
    #expect(
      refusal(["CONSENTGATE_SHARD": "x", "JOB_COMPLETION_INDEX": "0"]).contains(
        "CONSENTGATE_SHARD"))
    #expect(refusal(["CONSENTGATE_SHARD": "4/4"]).contains("CONSENTGATE_SHARD"))
    let inexact = [
      "SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2",
      "SLURM_ARRAY_TASK_COUNT": "4",
    ]
    #expect(refusal(inexact).contains("SLURM_ARRAY_TASK_STEP"))
    #expect(
      refusal(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0"]).contains(
        "SLURM_ARRAY_TASK_COUNT"))
    #expect(
      refusal([
        "SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4",
      ]).contains("SLURM_ARRAY_TASK_COUNT"))
    #expect(refusal(["JOB_COMPLETION_INDEX": "0"]).contains("CONSENTGATE_SHARD_COUNT"))
    #expect(
      refusal(["JOB_COMPLETION_INDEX": "2", "CONSENTGATE_SHARD_COUNT": "2"]).contains(
        "JOB_COMPLETION_INDEX"))
    #expect(refusal([:]).contains("CONSENTGATE_SHARD"))
  }

  @Test func selectionIsByOutputNameAsBytes() throws {
    let names = ["b.gz", "a.gz", "Z.gz", "c.gz", "é.gz"]
    // Sorted as bytes: Z.gz a.gz b.gz c.gz é.gz
    #expect(try Shard(index: 0, count: 2).select(outputNames: names) == [2, 0, 4])
    #expect(try Shard(index: 1, count: 2).select(outputNames: names) == [1, 3])
    #expect(try Shard(index: 5, count: 6).select(outputNames: names) == [])
  }

  @Test func inputListFile() throws {
    let dir = temporaryFolder()
    let list = writeFile(dir + "/list", "a.jsonl\r\n  \t\n\nsub/b c.jsonl\r\r\nlast")
    #expect(try InputList.read(list) == ["a.jsonl", "sub/b c.jsonl\r", "last"])
    #expect(throws: UsageError.self) { try InputList.read(dir + "/missing") }
  }
}

@Suite(.serialized) struct ShardRunTests {
  /// Five generated inputs plus ledger and tags in `dir`; returns the common options.
  private func corpus(_ dir: String) throws -> (options: [String], inputs: [String]) {
    var options = ExportGenerator.Options()
    options.records = 6_000
    options.users = 300
    options.files = 5
    let w = try ExportGenerator(options: options).write(to: dir)
    return (
      [
        "--quiet", "--consent", dir + "/" + w.consent, "--jurisdictions",
        dir + "/" + w.jurisdictions, "--cutoff", "2026-01-01T00:00:00Z",
      ], w.exports.map { dir + "/" + $0 }
    )
  }

  private func report(_ path: String) throws -> [String: Any] {
    let data = try #require(FileManager.default.contents(atPath: path))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }

  /// The keys §10 lets differ between a merged and an unsharded report are removed, and the
  /// orders it leaves free are fixed, so the rest compares key for key.
  private func comparable(_ r: [String: Any]) -> NSDictionary {
    var r = r
    for key in ["started_at", "finished_at", "threads", "shards"] { r[key] = nil }
    func byName(_ list: Any?, _ key: String) -> [[String: Any]] {
      ((list as? [[String: Any]]) ?? []).sorted { ($0[key] as! String) < ($1[key] as! String) }
    }
    r["inputs"] = byName(r["inputs"], "path")
    r["outputs"] = byName(r["outputs"], "path")
    r["warnings"] = ((r["warnings"] as? [String]) ?? []).sorted()
    return r as NSDictionary
  }

  @Test func mergedShardsEqualOneRun() throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    #expect(cg(["filter", "--out", dir + "/one"] + options + inputs).status == 0)
    writeFile(dir + "/list", inputs.joined(separator: "\n") + "\n")
    for i in 0..<3 {
      let r = cg(
        ["filter", "--out", dir + "/many", "--shard", "\(i)/3", "--inputs-from", dir + "/list"]
          + options)
      #expect(r.status == 0)
    }
    #expect(!FileManager.default.fileExists(atPath: dir + "/many/report.json"))
    let shard0 = try report(dir + "/many/reports/shard-00000-of-00003.json")
    #expect((shard0["shard"] as? [String: Int]) == ["index": 0, "count": 3])
    #expect(cg(["merge-reports", dir + "/many"]).status == 0)
    let merged = try report(dir + "/many/report.json")
    #expect(merged["shards"] as? Int == 3)
    #expect(comparable(merged) == comparable(try report(dir + "/one/report.json")))
    for input in inputs {
      let name = Filter.outputName(forInput: input, compression: .gzip)
      for part in ["kept", "quarantine"] {
        #expect(readBytes("\(dir)/one/\(part)/\(name)") == readBytes("\(dir)/many/\(part)/\(name)"))
      }
    }
    // A re-run of a finished shard with --resume redoes nothing.
    #expect(
      cg(
        ["filter", "--out", dir + "/many", "--shard", "1/3", "--resume"] + options + inputs
      ).status == 0)
    let again = try report(dir + "/many/reports/shard-00001-of-00003.json")
    #expect((again["inputs"] as! [[String: Any]]).allSatisfy { $0["resumed"] as? Bool == true })
  }

  /// Slurm (a stepped array) and Kubernetes shards from the environment, run side by side
  /// with `xargs -P`, merge to the unsharded report.
  @Test(arguments: ["slurm", "kubernetes"])
  func environmentShardsUnderXargs(_ engine: String) throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    #expect(cg(["filter", "--out", dir + "/one"] + options + inputs).status == 0)
    let command =
      ([consentgateBinary, "filter", "--out", dir + "/many", "--shard", "auto"]
      + options + inputs).map { "'\($0)'" }.joined(separator: " ")
    let environment =
      engine == "slurm"
      ? "SLURM_ARRAY_TASK_ID=$t SLURM_ARRAY_TASK_MIN=10 SLURM_ARRAY_TASK_STEP=5 SLURM_ARRAY_TASK_COUNT=3"
      : "JOB_COMPLETION_INDEX=$t CONSENTGATE_SHARD_COUNT=3"
    let tasks = engine == "slurm" ? "10 15 20" : "0 1 2"
    let r = shell(
      "printf '%s\\n' \(tasks) | xargs -P 2 -I{} sh -c 't={}; env \(environment) \(command)'")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(cg(["merge-reports", dir + "/many"]).status == 0)
    #expect(
      comparable(try report(dir + "/many/report.json"))
        == comparable(try report(dir + "/one/report.json")))
  }

  /// A shard clears only its own inputs' files (any suffix), never another shard's, and
  /// never DIR/report.json.
  @Test func shardClearsOnlyItsOwnFiles() throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    let out = dir + "/o"
    #expect(cg(["filter", "--out", out] + options + inputs).status == 0)
    let own = try Shard(index: 0, count: 2).select(
      outputNames: inputs.map { Filter.outputName(forInput: $0, compression: .gzip) }
    ).map { inputs[$0] }
    let ownStem = Filter.outputStem(forInput: own[0])
    writeFile(out + "/kept/" + ownStem, "stale, other suffix\n")
    writeFile(out + "/kept/.other.jsonl.gz.tmp-1234", "another shard writing\n")
    writeFile(out + "/kept/other.jsonl.gz", "another shard's\n")
    let report = readBytes(out + "/report.json")
    #expect(cg(["filter", "--out", out, "--shard", "0/2"] + options + inputs).status == 0)
    #expect(!FileManager.default.fileExists(atPath: out + "/kept/" + ownStem))
    #expect(FileManager.default.fileExists(atPath: out + "/kept/.other.jsonl.gz.tmp-1234"))
    #expect(FileManager.default.fileExists(atPath: out + "/kept/other.jsonl.gz"))
    #expect(readBytes(out + "/report.json") == report)
    for input in inputs {
      let name = Filter.outputName(forInput: input, compression: .gzip)
      #expect(FileManager.default.fileExists(atPath: out + "/kept/" + name))
    }
  }

  /// A failed input in one shard makes that shard and the merge exit 2; the quarantine
  /// ratio over all shards decides exit 3.
  @Test func exitStatusPropagates() throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    let truncated = dir + "/truncated.jsonl.gz"
    let whole = readBytes(inputs[0])
    writeFile(truncated, Array(whole[..<(whole.count / 2)]))
    let all = inputs + [truncated]
    var statuses: [Int32] = []
    for i in 0..<2 {
      statuses.append(
        cg(["filter", "--out", dir + "/o", "--shard", "\(i)/2"] + options + all).status)
    }
    #expect(statuses.sorted() == [0, 2])
    #expect(cg(["merge-reports", dir + "/o"]).status == 2)
    // Every record quarantined is above any ratio below 1.
    for i in 0..<2 {
      _ = cg(
        [
          "filter", "--out", dir + "/r", "--shard", "\(i)/2", "--max-quarantine-ratio", "0",
          "--unknown-jurisdiction", "quarantine", "--protect", "eea",
        ] + options + inputs)
    }
    let merged = cg(["merge-reports", dir + "/r"])
    let totals = try report(dir + "/r/report.json")["totals"] as! [String: Int]
    #expect(merged.status == (totals["quarantined"]! > 0 ? 3 : 0))
  }

  @Test func mergeRefusesShardsThatDoNotBelongTogether() throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    func run(_ out: String, _ shard: String, _ extra: [String] = [], _ list: [String]? = nil)
      -> Int32
    {
      cg(
        ["filter", "--out", dir + "/" + out, "--shard", shard] + options + extra + (list ?? inputs)
      )
      .status
    }
    func refused(_ out: String, _ word: String, shards: String? = nil) {
      let r = cg(["merge-reports", dir + "/" + out] + (shards.map { ["--shards", $0] } ?? []))
      #expect(r.status == 2, "\(out)")
      #expect(r.stderr.contains(word), "\(out): \(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: dir + "/\(out)/report.json"))
    }
    // A missing shard.
    #expect(run("missing", "0/3") == 0)
    #expect(run("missing", "2/3") == 0)
    refused("missing", "shard-00001-of-00003.json")
    // Another policy in one shard.
    #expect(run("policy", "0/2") == 0)
    #expect(run("policy", "1/2", ["--purpose", "ads"]) == 0)
    refused("policy", "policy_sha256")
    // One input in two shards: each shard ran over another input list.
    #expect(run("twice", "0/2", [], Array(inputs[0..<3])) == 0)
    #expect(run("twice", "1/2", [], Array(inputs[1..<5])) == 0)
    refused("twice", "both hold")
    // Several counts without --shards; with it, the chosen count merges.
    #expect(run("counts", "0/1") == 0)
    #expect(run("counts", "0/2") == 0)
    refused("counts", "--shards")
    #expect(cg(["merge-reports", dir + "/counts", "--shards", "1"]).status == 0)
    refused("counts", "shard-00001-of-00002.json", shards: "2")
  }

  @Test func inputsFromAndShardUsageErrors() throws {
    let dir = temporaryFolder()
    let (options, inputs) = try corpus(dir)
    #expect(
      cg(["filter", "--out", dir + "/o", "--inputs-from", dir + "/missing"] + options).status
        == 64)
    writeFile(dir + "/empty", "\n  \n")
    #expect(
      cg(["filter", "--out", dir + "/o", "--inputs-from", dir + "/empty"] + options).status == 64)
    #expect(cg(["filter", "--out", dir + "/o", "--shard", "2/2"] + options + inputs).status == 64)
    let auto = shell(
      "env -u CONSENTGATE_SHARD -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX '\(consentgateBinary)' filter --out '\(dir)/o' --shard auto "
        + (options + inputs).map { "'\($0)'" }.joined(separator: " "))
    #expect(auto.status == 64)
    #expect(auto.stderr.contains("CONSENTGATE_SHARD"))
    // Without --shard the environment is never read.
    let plain = shell(
      "CONSENTGATE_SHARD=bad '\(consentgateBinary)' filter --out '\(dir)/p' "
        + (options + inputs).map { "'\($0)'" }.joined(separator: " "))
    #expect(plain.status == 0)
  }

  /// A shard dies with the process that started it: an engine's retry never runs beside an
  /// orphan writing the same files.
  @Test func shardDiesWithItsParent() throws {
    let dir = temporaryFolder()
    // The shard reads stdin from a pipe that stays open, so it runs until it is killed; its
    // parent is the inner shell, which the outer one kills. Output goes nowhere, so that the
    // orphaned `sleep` holds no pipe of ours.
    let script = """
      sh -c "sleep 5 | '\(consentgateBinary)' filter --quiet --shard 0/1 --out '\(dir)/o' - & echo \\$! > '\(dir)/pid'; wait" > /dev/null 2>&1 &
      parent=$!
      for i in $(seq 1 100); do [ -s '\(dir)/pid' ] && break; sleep 0.05; done
      pid=$(cat '\(dir)/pid')
      sleep 0.3
      kill -0 "$pid" && echo "alive before"
      kill -9 "$parent"
      wait "$parent" 2>/dev/null
      for i in $(seq 1 100); do
        if ! [ -e /proc/$pid ] || grep -q ') Z ' /proc/$pid/stat; then echo "gone after"; break; fi
        sleep 0.02
      done
      """
    let r = shell(script)
    let out = String(decoding: r.stdout, as: UTF8.self)
    #expect(out.contains("alive before"), "\(out) \(r.stderr)")
    #expect(out.contains("gone after"), "\(out) \(r.stderr)")
  }

}
