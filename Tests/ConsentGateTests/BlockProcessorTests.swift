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
