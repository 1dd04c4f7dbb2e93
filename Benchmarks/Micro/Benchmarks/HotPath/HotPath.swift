// The per-record hot path must not allocate: these benchmarks count mallocs per batch of
// records (see check-mallocs.sh for the committed limits) and report throughput.
import Benchmark
import ConsentGate
import Foundation

/// Typical ~1 KB records with nested objects, unicode, emoji and escapes.
func sampleRecords(_ count: Int) -> [[UInt8]] {
  var rng = SplitMix64(seed: 11)
  return (0..<count).map { i in
    let user = 1_000_000 + Int(rng.next() % 1000)
    let country = ["DE", "FR", "US", "BR", "JP"][Int(rng.next() % 5)]
    let text = String(
      repeating: "training data caf\\u00e9 ελληνικά 🚀 \\\"quoted\\\" line\\nbreak ", count: 12)
    return Array(
      #"{"id":"post-\#(i)","user_id":"\#(user)","created_at":"2024-05-01T12:00:00Z","author":{"handle":"@u\#(user)","followers":\#(rng.next() % 9999)},"text":"\#(text)","geo":{"country":"\#(country)","place":{"lat":12.5,"lon":-3.25}},"mentions":["@a","@b"],"metrics":{"likes":5,"shares":1}}"#
        .utf8)
  }
}

func makeIndex(_ policy: Policy) -> ConsentIndex {
  let dir = NSTemporaryDirectory() + "cg-micro"
  try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  var ledger = "user_id,purpose,status,recorded_at\n"
  var tags = "user_id,country\n"
  for u in 0..<1000 where u % 3 != 0 {
    ledger += "\(1_000_000 + u),ai_training,granted,2024-01-01T00:00:00Z\n"
    tags += "\(1_000_000 + u),\(["DE", "US"][u % 2])\n"
  }
  _ = FileManager.default.createFile(atPath: dir + "/l.csv", contents: Data(ledger.utf8))
  _ = FileManager.default.createFile(atPath: dir + "/t.csv", contents: Data(tags.utf8))
  var loader = SideFileLoader(policy: policy)
  try! loader.load(consent: [dir + "/l.csv"], jurisdictions: [dir + "/t.csv"])
  return loader.index
}

let benchmarks: @Sendable () -> Void = {
  let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
  let config = Benchmark.Configuration(metrics: metrics, maxDuration: .seconds(3))
  let records = sampleRecords(1000)
  let bytes = records.reduce(0) { $0 + $1.count }
  var settings = PolicySettings()
  settings.cutoff = "2025-01-01T00:00:00Z"
  settings.countryPath = ["/geo/country"]
  let policy = try! settings.policy(runStart: Timestamp(seconds: 0))
  let index = makeIndex(policy)

  Benchmark("scan 1000 records (validate + 2 fields)", configuration: config) { benchmark in
    let scanner = RecordScanner(pointers: [
      try! JSONPointer("/user_id"), try! JSONPointer("/geo/country"),
    ])
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      for r in records {
        r.withUnsafeBytes { blackHole(UTF8Validation.isValid($0) && scanner.scan($0)) }
      }
    }
  }

  Benchmark("decide 1000 records", configuration: config) { benchmark in
    let decider = RecordDecider(policy: policy, index: index)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      for r in records { r.withUnsafeBytes { blackHole(decider.decide($0)) } }
    }
  }

  Benchmark("index 1000 lookups", configuration: config) { benchmark in
    let ids = (0..<1000).map { Array(String(1_000_000 + $0).utf8) }
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      for id in ids { id.withUnsafeBytes { blackHole(index.find($0)) } }
    }
  }

  Benchmark("index 1000 lookups, batched", configuration: config) { benchmark in
    let ids = (0..<1000).map { Array(String(1_000_000 + $0).utf8) }
    // Views made before measuring; the arrays outlive them unchanged.
    let views = ids.map { $0.withUnsafeBytes { $0 } }
    var results = [ConsentIndex.Entry?](repeating: nil, count: ids.count)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      views.withUnsafeBufferPointer { batch in
        results.withUnsafeMutableBufferPointer { index.find(batch: batch, into: $0) }
      }
      blackHole(results[0])
    }
  }

  Benchmark("process one block (decide + copy, no compression)", configuration: config) {
    benchmark in
    var noCompression = policy
    noCompression.compression = .none
    let processor = BlockProcessor(policy: noCompression, index: index)
    let block = RecordBlock(
      sequence: 0, firstLine: 1, lineCount: records.count,
      bytes: Array(records.joined(separator: [0x0A])) + [0x0A], oversized: nil)
    let source = Array(#""posts.jsonl""#.utf8)
    var outcome = BlockOutcome(sequence: 0)
    outcome.kept.reserveCapacity(bytes * 2)
    outcome.quarantine.reserveCapacity(bytes * 2)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      processor.process(block, sourceJSON: source, into: &outcome)
      outcome.kept.removeAll(keepingCapacity: true)
      outcome.quarantine.removeAll(keepingCapacity: true)
    }
  }

  // The pipeline's path with --compression none: kept lines leave as runs of the block.
  Benchmark("process one block (decide, kept lines by reference)", configuration: config) {
    benchmark in
    var noCompression = policy
    noCompression.compression = .none
    let processor = BlockProcessor(policy: noCompression, index: index, keptByReference: true)
    let block = RecordBlock(
      sequence: 0, firstLine: 1, lineCount: records.count,
      bytes: Array(records.joined(separator: [0x0A])) + [0x0A], oversized: nil)
    let source = Array(#""posts.jsonl""#.utf8)
    var outcome = BlockOutcome(sequence: 0)
    outcome.keptRuns.reserveCapacity(records.count)
    outcome.quarantine.reserveCapacity(bytes * 2)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      processor.process(block, sourceJSON: source, into: &outcome)
      outcome.quarantine.removeAll(keepingCapacity: true)
    }
  }

  Benchmark("gzip one 1 MiB block, level 6", configuration: config) { benchmark in
    let writer = GzipMemberWriter(level: 6)
    var block = Array(records.joined(separator: [0x0A]))
    while block.count < 1 << 20 { block += block }
    block = Array(block.prefix(1 << 20))
    var out: [UInt8] = []
    out.reserveCapacity(2 << 20)
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
      out.removeAll(keepingCapacity: true)
      writer.compress(block, appendingTo: &out)
    }
  }
}
