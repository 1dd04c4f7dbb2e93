import CScanKernels
import Foundation
import Testing

@testable import ConsentGate

/// The first input is read ahead while the side files load (``InputPrefetch``); the run must
/// come out byte for byte as without it, whether the read-ahead covers part of the input, all
/// of it, or stops on an error. A block lost at the hand-over hangs the run, hence the limit.
@Suite(.timeLimit(.minutes(2))) struct ReadAheadTests {
  /// Runs the filter on `inputs` with the generated side files; `readAhead` 0 turns it off.
  private func run(
    _ dir: String, _ w: ExportGenerator.Written, inputs: [String], readAhead: Int, out: String
  ) throws -> (FilterReport, FilterOutcome) {
    var settings = PolicySettings()
    settings.cutoff = "2026-01-01T00:00:00Z"
    var config = FilterConfiguration(
      policy: try settings.policy(runStart: .now()), inputs: inputs, outputDirectory: out)
    config.consentFiles = [dir + "/" + w.consent]
    config.jurisdictionFiles = [dir + "/" + w.jurisdictions]
    config.threads = 2
    config.blockTarget = 4096
    config.readAhead = readAhead
    return try Filter(configuration: config).run()
  }

  /// What must not depend on the read-ahead: per input its status, error, hash, sizes and
  /// counts, and every output's bytes.
  private func summary(_ report: FilterReport, _ out: String) -> [String] {
    var lines = report.inputs.map {
      "\($0.path) \($0.status) \($0.error ?? "-") \($0.sha256 ?? "-") \($0.bytesCompressed) "
        + "\($0.bytesUncompressed) \($0.counts.records) \($0.counts.kept)"
    }
    for o in report.outputs {
      lines.append("\(o.path) \(o.sha256) \(o.records) \(o.bytes)")
      lines.append("\(o.path) read back: \(readBytes(out + "/" + o.path).count)")
    }
    return lines
  }

  @Test(arguments: [0, 3 * 4096, 1 << 30])
  func outputsAndReportAreTheSameWithAnyReadAhead(budget: Int) throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 2_000)
    let input = dir + "/" + w.exports[0]
    let plain = dir + "/plain.jsonl"
    writeFile(plain, gunzip(input))
    for path in [input, plain] {
      let (a, outcomeA) = try run(dir, w, inputs: [path], readAhead: 0, out: dir + "/a")
      let (b, outcomeB) = try run(dir, w, inputs: [path], readAhead: budget, out: dir + "/b")
      #expect(outcomeA == .success && outcomeB == .success)
      #expect(a.totals.records > 1_900 && a.totals.records == b.totals.records)
      #expect(summary(a, dir + "/a") == summary(b, dir + "/b"))
      for o in a.outputs {
        #expect(readBytes(dir + "/a/" + o.path) == readBytes(dir + "/b/" + o.path), "\(o.path)")
      }
      let digest = shell("sha256sum '\(path)' | cut -c1-64").stdout.prefix(64)
      #expect(b.inputs[0].sha256 == String(decoding: digest, as: UTF8.self))
    }
  }

  /// A second input is read as before; only the first is read ahead.
  @Test func onlyTheFirstOfSeveralInputsIsReadAhead() throws {
    let dir = temporaryFolder()
    var options = ExportGenerator.Options()
    options.records = 3_000
    options.files = 3
    let w = try ExportGenerator(options: options).write(to: dir)
    let inputs = w.exports.map { dir + "/" + $0 }
    let (a, _) = try run(dir, w, inputs: inputs, readAhead: 0, out: dir + "/a")
    let (b, _) = try run(dir, w, inputs: inputs, readAhead: 2 * 4096, out: dir + "/b")
    #expect(a.inputs.count == 3)
    #expect(summary(a, dir + "/a") == summary(b, dir + "/b"))
  }

  /// A truncated input fails the same way whether the cut lies inside the read-ahead or
  /// after it: same status, same message (with the line it follows), no outputs.
  @Test(arguments: [0, 4 * 4096, 1 << 30])
  func aTruncatedInputFailsAlikeWithAnyReadAhead(budget: Int) throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 2_000)
    let whole = readBytes(dir + "/" + w.exports[0])
    let cut = dir + "/cut.jsonl.gz"
    writeFile(cut, Array(whole.prefix(whole.count * 2 / 3)))
    let (a, outcomeA) = try run(dir, w, inputs: [cut], readAhead: 0, out: dir + "/a")
    let (b, outcomeB) = try run(dir, w, inputs: [cut], readAhead: budget, out: dir + "/b")
    #expect(outcomeA == .dataError && outcomeB == .dataError)
    #expect(b.inputs[0].status == .truncated)
    #expect(b.inputs[0].error?.contains("after line") == true, "\(b.inputs[0].error ?? "")")
    #expect(summary(a, dir + "/a") == summary(b, dir + "/b"))
    #expect(b.outputs.isEmpty)
    let kept = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/b/kept")) ?? []
    #expect(kept.isEmpty, "\(kept)")
  }

  @Test func aMissingFirstInputIsReportedAsWithoutReadAhead() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 100)
    let inputs = [dir + "/missing.jsonl.gz", dir + "/" + w.exports[0]]
    let (a, _) = try run(dir, w, inputs: inputs, readAhead: 0, out: dir + "/a")
    let (b, outcome) = try run(dir, w, inputs: inputs, readAhead: 1 << 20, out: dir + "/b")
    #expect(outcome == .dataError)
    #expect(b.inputs[0].status == .unreadable)
    #expect(summary(a, dir + "/a") == summary(b, dir + "/b"))
  }

  /// A bad ledger still stops the run before any output, with the input half read.
  @Test func aBadLedgerStopsTheRunBeforeAnyOutput() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 2_000)
    writeFile(dir + "/" + w.consent, "user_id,purpose,status,recorded_at\n1,ai_training,maybe,x\n")
    #expect(throws: FilterFailure.self) {
      try run(dir, w, inputs: [dir + "/" + w.exports[0]], readAhead: 1 << 20, out: dir + "/o")
    }
    for sub in ["kept", "quarantine", "report.json"] {
      #expect(!FileManager.default.fileExists(atPath: dir + "/o/" + sub), "\(sub)")
    }
  }
}

/// The read-ahead must not delay a bad ledger's exit: a first input on stdin or a FIFO that
/// nobody writes is not read ahead, since the read would block.
@Suite(.timeLimit(.minutes(2))) struct ReadAheadBlockingTests {
  @Test func aBadLedgerEndsTheRunAtOnceWhenTheFirstInputWouldBlock() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/bad.csv", "user_id,purpose,status,recorded_at\n1,ai_training,maybe,x\n")
    #expect(mkfifo(dir + "/fifo", 0o600) == 0)
    // The shell holds the FIFO open for reading and writing and never writes: a read from
    // it, as stdin or by its path, blocks for good. `timeout` ends a hung run with SIGKILL:
    // the test process blocks SIGTERM, and its children inherit the mask.
    for input in ["-", dir + "/fifo"] {
      let r = shell(
        "exec 3<>'\(dir)/fifo'; exec timeout -s KILL 20 '\(consentgateBinary)' filter --quiet --threads 2 "
          + "--out '\(dir)/o' --consent '\(dir)/bad.csv' '\(input)' <&3")
      #expect(r.status == 2, "\(input): \(r.stderr)")
    }
  }
}

@Suite struct LineCountTests {
  /// `cg_count_lf` against a byte-by-byte count, over lengths and LF placements that cover
  /// its 128-byte AVX2 loop, its 64-byte SSE2 loop and the scalar tail.
  @Test func countsEveryLFAndFindsTheLast() {
    var generator = SystemRandomNumberGenerator()
    for length in Array(0...300) + [1023, 1024, 4097, 65_536] {
      for density in [0, 1, 50, 1000] {
        var bytes = (0..<length).map { _ in UInt8.random(in: 32...126, using: &generator) }
        for k in bytes.indices where density > 0 && Int.random(in: 0..<1000) < density {
          bytes[k] = 0x0A
        }
        if length > 0 && density == 1 { bytes[length - 1] = 0x0A }
        let expected = bytes.filter { $0 == 0x0A }.count
        let expectedLast = bytes.lastIndex(of: 0x0A) ?? length
        var last = -1
        let count = bytes.withUnsafeBufferPointer { cg_count_lf($0.baseAddress, length, &last) }
        #expect(count == expected, "length \(length), density \(density)")
        #expect(last == expectedLast, "length \(length), density \(density)")
      }
    }
  }
}
