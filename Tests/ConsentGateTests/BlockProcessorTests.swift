import Crypto
import Foundation
import Testing

@testable import ConsentGate

/// The block path (examine every line, look all users up at once, then decide) must give
/// what deciding each record on its own gives.
@Suite struct BlockProcessorTests {
  @Test func batchedBlockDecisionsEqualRecordByRecordDecisions() throws {
    let policy = try makePolicy { $0.compression = "none" }
    var ledger = "user_id,purpose,status,recorded_at\n"
    for u in 0..<200 where u % 3 != 0 {
      ledger += "u\(u),ai_training,\(u % 5 == 0 ? "withdrawn" : "granted"),2024-01-01T00:00:00Z\n"
    }
    for u in 0..<200 where u % 7 == 0 {
      ledger += "\(u),ai_training,granted,2024-01-01T00:00:00Z\n"
    }
    let index = try loadIndex(
      policy: policy, ledger: ledger,
      tags: "user_id,country\n" + (0..<200).map { "u\($0),\($0 % 2 == 0 ? "DE" : "US")\n" }.joined()
    )
    var rng = SplitMix64(seed: 9)
    var lines: [String] = []
    for _ in 0..<5000 {
      let u = Int(rng.next() % 220)
      switch rng.next() % 8 {
      case 0:
        lines.append(#"{"user_id":"u\u00\#(String(48 + u % 10, radix: 16))\#(u / 10)","t":1}"#)
      case 1: lines.append(#"{"user_id":\#(u),"country":"FR"}"#)
      case 2: lines.append("")
      case 3: lines.append(#"{"user_id":"u\#(u)""#)  // malformed
      case 4: lines.append(#"{"user_id":"\u0075\#(u)","country":"DE"}"#)
      default: lines.append(#"{"user_id":"u\#(u)","country":"\#(u % 3 == 0 ? "US" : "DE")"}"#)
      }
    }
    let bytes = Array(lines.joined(separator: "\n").utf8) + [0x0A]
    let block = RecordBlock(
      sequence: 0, firstLine: 1, lineCount: lines.count, bytes: bytes, oversized: nil)
    let outcome = BlockProcessor(policy: policy, index: index).process(
      block, sourceJSON: Array("\"in\"".utf8))

    let decider = RecordDecider(policy: policy, index: index)
    var kept: [UInt8] = []
    var counts = RecordCounts()
    for line in lines where !line.isEmpty {
      let verdict = Array(line.utf8).withUnsafeBytes { decider.decide($0) }
      counts.count(verdict)
      if verdict.reason.disposition == .keep { kept += Array(line.utf8) + [0x0A] }
    }
    #expect(outcome.kept == kept)
    #expect(outcome.keptRecords > 100)
    #expect(
      outcome.counts.reasons == counts.reasons && outcome.counts.jurisdiction == counts.jurisdiction
    )
    #expect(outcome.counts.blankLines == lines.filter(\.isEmpty).count)
  }
}

/// Uncompressed kept lines handed on by reference (runs of the block, as the pipeline
/// writes them) must be byte for byte what copying them gives, whatever the line ends.
@Suite struct KeptRunsTests {
  /// The kept output `runs` of `block` describe, as ``OutputFile`` writes it.
  func written(_ outcome: BlockOutcome, dir: String, name: String) throws -> ([UInt8], String) {
    let file = try OutputFile(finalPath: dir + "/" + name)
    try outcome.source!.withUnsafeBytes { bytes in
      try file.write(runs: outcome.keptRuns, of: bytes)
    }
    let digest = try file.commit()
    return (readBytes(dir + "/" + name), digest)
  }

  @Test func runsEqualCopiedLinesForEveryLineEnd() throws {
    let policy = try makePolicy { $0.compression = "none" }
    let index = try loadIndex(
      policy: policy,
      ledger: "user_id,purpose,status,recorded_at\n"
        + (0..<50).map { "u\($0),ai_training,granted,2024-01-01T00:00:00Z\n" }.joined(),
      tags: "user_id,country\n" + (0..<100).map { "u\($0),DE\n" }.joined())
    var rng = SplitMix64(seed: 21)
    let dir = temporaryFolder("runs")
    // Several thousand lines, so that one block needs more than one writev of runs; every
    // mix of LF, CRLF, blank lines, dropped and quarantined neighbours, and a last line
    // with or without an LF.
    for finalLF in [true, false] {
      var text: [UInt8] = []
      // What the kept output must be, worked out here line by line: each kept record's
      // bytes without its CR, then one LF.
      var expectedKept: [UInt8] = []
      var lineCount = 0
      for k in 0..<6000 {
        let u = Int(rng.next() % 100)  // u < 50 kept, others dropped (EEA, no consent)
        switch rng.next() % 6 {
        case 0: text += Array("   ".utf8)
        case 1: text += Array(#"{"user_id":"u\#(u)""#.utf8)  // malformed: quarantined
        default:
          let record = Array(#"{"user_id":"u\#(u)","n":\#(k)}"#.utf8)
          text += record
          if u < 50 { expectedKept += record + [0x0A] }
        }
        lineCount += 1
        let last = k == 5999
        if last && !finalLF { break }
        text += rng.next() % 3 == 0 ? [0x0D, 0x0A] : [0x0A]
      }
      let block = RecordBlock(
        sequence: 0, firstLine: 1, lineCount: lineCount, bytes: text, oversized: nil)
      let source = Array(#""in""#.utf8)
      let copied = BlockProcessor(policy: policy, index: index).process(block, sourceJSON: source)
      let byReference = BlockProcessor(policy: policy, index: index, keptByReference: true)
        .process(block, sourceJSON: source)
      #expect(copied.source == nil && copied.keptRuns.isEmpty)
      // Compared by digest: a failure prints two lines, not two megabytes.
      let expectedDigest = hexString(SHA256.hash(data: expectedKept))
      #expect(copied.kept.count == expectedKept.count)
      #expect(hexString(SHA256.hash(data: copied.kept)) == expectedDigest)
      // The gzip path gathers the same runs before compressing them.
      let gzipPolicy = try makePolicy { $0.compression = "gzip" }
      let zipped = BlockProcessor(policy: gzipPolicy, index: index).process(
        block, sourceJSON: source)
      let member = dir + "/kept-\(finalLF).gz"
      FileManager.default.createFile(atPath: member, contents: Data(zipped.kept))
      #expect(hexString(SHA256.hash(data: gunzip(member))) == expectedDigest)
      #expect(byReference.kept.isEmpty && byReference.keptRuns.count > 1024)
      #expect(byReference.keptRecords == copied.keptRecords && copied.keptRecords > 1000)
      #expect(byReference.quarantine == copied.quarantine)
      let (bytes, digest) = try written(byReference, dir: dir, name: "kept-\(finalLF)")
      // Compared by length and digest: a failure prints two lines, not two megabytes.
      let expected = hexString(SHA256.hash(data: copied.kept))
      #expect(bytes.count == copied.kept.count)
      #expect(hexString(SHA256.hash(data: bytes)) == expected)
      #expect(digest == expected)
    }
  }

  @Test func gzipOutputIsNeverByReference() throws {
    let policy = try makePolicy { $0.compression = "gzip" }
    let index = try loadIndex(
      policy: policy, ledger: "user_id,purpose,status,recorded_at\n",
      tags: "user_id,country\nu1,US\n")
    let block = RecordBlock(
      sequence: 0, firstLine: 1, lineCount: 1, bytes: Array(#"{"user_id":"u1"}"#.utf8) + [0x0A],
      oversized: nil)
    let outcome = BlockProcessor(policy: policy, index: index, keptByReference: true).process(
      block, sourceJSON: Array(#""in""#.utf8))
    #expect(outcome.source == nil && outcome.keptRuns.isEmpty && !outcome.kept.isEmpty)
  }
}

/// Several inputs read at once (one lane per core) give the outputs and report entries that
/// reading them one after the other gives, whatever the lane count; a bad input among them
/// fails alone.
@Suite struct InputsInFlightTests {
  @Test func lanesDoNotChangeOutputsOrReport() throws {
    let dir = temporaryFolder()
    var options = ExportGenerator.Options()
    options.records = 12_000
    options.users = 1_000
    options.files = 5
    let w = try ExportGenerator(options: options).write(to: dir)
    var inputs = w.exports.map { dir + "/" + $0 }
    // A truncated gzip input in the middle.
    let whole = readBytes(inputs[0])
    inputs.insert(writeFile(dir + "/cut.gz", Array(whole[0..<(whole.count / 2)])), at: 2)

    var seen: [[String]] = []
    var reports: [String] = []
    for (threads, lanes) in [(1, 1), (2, 1), (2, 2), (4, 3), (4, 6)] {
      var config = FilterConfiguration(
        policy: try makePolicy { $0.cutoff = "2026-01-01T00:00:00Z" }, inputs: inputs,
        outputDirectory: dir + "/out-\(threads)-\(lanes)")
      config.consentFiles = [dir + "/" + w.consent]
      config.jurisdictionFiles = [dir + "/" + w.jurisdictions]
      config.threads = threads
      config.inputsInFlight = lanes
      let (report, outcome) = try Filter(configuration: config).run()
      #expect(outcome == .dataError)
      #expect(report.inputs.map(\.path) == inputs)
      #expect(
        report.inputs.map(\.status) == inputs.map { $0.hasSuffix("cut.gz") ? .truncated : .ok })
      var entries = report.inputs.map { "\($0.path) \($0.sha256 ?? "-") \($0.counts.kept)" }
      entries += report.outputs.map { "\($0.path) \($0.sha256) \($0.records)" }
      seen.append(entries)
      reports.append("\(report.totals.kept) \(report.totals.records)")
    }
    for k in 1..<seen.count {
      #expect(seen[k] == seen[0])
      #expect(reports[k] == reports[0])
    }
    #expect(report0HasEveryGoodInput(seen[0], inputs.count - 1))
  }

  private func report0HasEveryGoodInput(_ entries: [String], _ good: Int) -> Bool {
    entries.filter { $0.hasPrefix("kept/") }.count == good
  }
}
