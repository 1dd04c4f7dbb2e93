// Throughput benchmarks for the stages of consentgate, each against a reference measured in
// the same run. Run through Benchmarks/run.sh, which builds in release mode and makes the data
// with `consentgate generate`. Figures are printed, never asserted.
import CZlib
import ConsentGate
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

func seconds(_ body: () throws -> Void) rethrows -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  try body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Wall time of a reference command run by `/bin/sh`.
func secondsOfShell(_ command: String) throws -> Double {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/bin/sh")
  process.arguments = ["-c", command]
  return try seconds {
    try process.run()
    process.waitUntilExit()
  }
}

func peakRSSMiB() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_maxrss) / 1024
}

func report(_ name: String, _ value: Double, _ unit: String) {
  let padded = name.padding(toLength: 48, withPad: " ", startingAt: 0)
  print(padded + String(format: "%10.2f ", value) + unit)
}

/// A bare zlib inflate loop: the reference the reading layer is held to.
func bareInflate(_ path: String) -> UInt64 {
  let fd = open(path, O_RDONLY)
  defer { close(fd) }
  let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 64)
  let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
  defer {
    input.deallocate()
    output.deallocate()
  }
  let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
  stream.initialize(to: z_stream())
  inflateInit2_(stream, 31, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
  var total: UInt64 = 0
  while true {
    if stream.pointee.avail_in == 0 {
      let n = read(fd, input.baseAddress, input.count)
      if n <= 0 { break }
      stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
      stream.pointee.avail_in = UInt32(n)
    }
    stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
    stream.pointee.avail_out = UInt32(output.count)
    let rc = inflate(stream, Z_NO_FLUSH)
    total += UInt64(output.count - Int(stream.pointee.avail_out))
    if rc == Z_STREAM_END { inflateReset(stream) } else if rc != Z_OK && rc != Z_BUF_ERROR { break }
  }
  inflateEnd(stream)
  stream.deallocate()
  return total
}

/// Takes raw chunks and hashes nothing: in the pipeline the writer thread hashes them.
final class NotHashing: RawInputHasher {
  func hashCopy(of chunk: UnsafeRawBufferPointer) {}
  func hashInPlace(_ chunk: UnsafeRawBufferPointer) -> Int { 0 }
  func waitUntilHashed(_ ticket: Int) {}
}

/// Reading + framing through the library, as `filter` does it.
func readAndFrame(_ path: String) throws -> (bytes: UInt64, lines: Int) {
  let source = try InputSource(path: path)
  // In the pipeline the input's SHA-256 is taken on the writer thread, not here.
  source.rawHasher = NotHashing()
  let reader = try DecodingReader(source: source)
  let framer = BlockFramer(reader: reader, maxRecordBytes: 16 << 20)
  var recycled: [BlockBuffer] = []
  framer.takeBuffer = { recycled.popLast() ?? BlockBuffer() }
  var lines = 0
  while let block = try framer.next() {
    lines += block.lineCount
    recycled.append(block.buffer)
  }
  return (reader.bytesDecoded, lines)
}

func benchRead(_ path: String) throws {
  var bytes: UInt64 = 0
  let bare = seconds { bytes = bareInflate(path) }
  var framed: (bytes: UInt64, lines: Int) = (0, 0)
  let ours = try seconds { framed = try readAndFrame(path) }
  precondition(framed.bytes == bytes, "decoded sizes differ")
  report("bare zlib inflate loop", Double(bytes) / 1e6 / bare, "MB/s")
  report("read + frame (DecodingReader, BlockFramer)", Double(bytes) / 1e6 / ours, "MB/s")
  report("read + frame ÷ bare inflate", bare / ours, "×")
  // The same file through GNU gzip, in this run: the ratio the reading layer is held to.
  let reference = try secondsOfShell("gzip -dc '\(path)' > /dev/null")
  report("zcat > /dev/null", Double(bytes) / 1e6 / reference, "MB/s")
  report("read + frame ÷ zcat", reference / ours, "×")
  report("peak RSS", peakRSSMiB(), "MiB")
}

/// Decoded lines of a file, for the in-memory benchmarks.
func loadLines(_ path: String, limit: Int) throws -> [[UInt8]] {
  let reader = try DecodingReader(source: try InputSource(path: path))
  let framer = BlockFramer(reader: reader, maxRecordBytes: 16 << 20)
  var lines: [[UInt8]] = []
  while lines.count < limit, let block = try framer.next() {
    for line in block.buffer.bytes.split(separator: 0x0A) where lines.count < limit {
      lines.append(Array(line.last == 0x0D ? line.dropLast() : line))
    }
  }
  return lines
}

func benchScan(_ path: String) throws {
  let lines = try loadLines(path, limit: 200_000)
  let total = lines.reduce(0) { $0 + $1.count }
  let scanner = RecordScanner(pointers: [
    try JSONPointer("/user_id"), try JSONPointer("/geo/country"),
  ])
  var valid = 0
  var best = Double.infinity
  for _ in 0..<5 {
    valid = 0
    best = min(
      best,
      seconds {
        for line in lines {
          line.withUnsafeBytes { raw in
            // As the decider does it: one pass, UTF-8 checked apart only on failure.
            if scanner.scan(raw) || !UTF8Validation.isValid(raw) { valid += 1 }
          }
        }
      })
  }
  var foundation = 0
  let reference = seconds {
    for line in lines.prefix(50_000) {
      if (try? JSONSerialization.jsonObject(with: Data(line))) is [String: Any] { foundation += 1 }
    }
  }
  let referenceBytes = lines.prefix(50_000).reduce(0) { $0 + $1.count }
  let oursRate = Double(total) / best
  let theirRate = Double(referenceBytes) / reference
  report("records scanned (valid)", Double(valid), "")
  report("average record", Double(total) / Double(lines.count), "bytes")
  report("validate + extract 2 fields, one core", oursRate / 1e9, "GB/s")
  report("JSONSerialization, one core", theirRate / 1e9, "GB/s")
  report("scanner ÷ JSONSerialization", oursRate / theirRate, "×")
}

func benchIndex(users: Int) throws {
  let dir = NSTemporaryDirectory() + "cg-index-bench"
  try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  let ledger = dir + "/ledger-\(users).csv"
  // One granted event per user, ids like real numeric account ids.
  if !FileManager.default.fileExists(atPath: ledger + ".done") {
    let handle =
      FileHandle(forWritingAtPath: ledger)
      ?? {
        _ = FileManager.default.createFile(atPath: ledger, contents: nil)
        return FileHandle(forWritingAtPath: ledger)!
      }()
    handle.truncateFile(atOffset: 0)
    var text = "user_id,purpose,status,recorded_at\n"
    for u in 0..<users {
      text += "\(100_000_000_000 + u * 7919),ai_training,granted,2024-01-01T00:00:00Z\n"
      if text.utf8.count > 1 << 20 {
        handle.write(Data(text.utf8))
        text = ""
      }
    }
    handle.write(Data(text.utf8))
    handle.closeFile()
    _ = FileManager.default.createFile(atPath: ledger + ".done", contents: nil)
  }
  let policy = try {
    var s = PolicySettings()
    s.cutoff = "2025-01-01T00:00:00Z"
    return try s.policy(runStart: Timestamp(seconds: 0))
  }()
  let rssBefore = peakRSSMiB()
  var loader = SideFileLoader(policy: policy)
  let load = try seconds { try loader.load(consent: [ledger], jurisdictions: []) }
  let index = loader.index
  let idBytes = (0..<users).reduce(0) { $0 + String(100_000_000_000 + $1 * 7919).utf8.count }
  report("users", Double(index.count), "")
  report("load rate (CSV rows)", Double(users) / load / 1e6, "M rows/s")
  report(
    "index bytes per user, ids excluded", Double(index.memoryBytes - idBytes) / Double(users), "B")
  report("peak RSS growth while loading", peakRSSMiB() - rssBefore, "MiB")
  // The probe ids lie back to back in one buffer, as record ids lie in a block.
  var rng = SplitMix64(seed: 5)
  var probeBytes: [UInt8] = []
  var probeRanges: [Range<Int>] = []
  for _ in 0..<1_000_000 {
    let u = Int(rng.next() % UInt64(users * 2))
    let start = probeBytes.count
    probeBytes += Array(String(100_000_000_000 + u * 7919).utf8)
    probeRanges.append(start..<probeBytes.count)
  }
  probeBytes.withUnsafeBytes { all in
    let views = probeRanges.map { UnsafeRawBufferPointer(rebasing: all[$0]) }
    var hits = 0
    let lookup = seconds {
      for _ in 0..<10 {
        for id in views where index.find(id) != nil { hits += 1 }
      }
    }
    report("lookups one by one, one core (half misses)", 10_000_000 / lookup / 1e6, "M/s")
    // The pipeline looks up a block's records together (ConsentIndex.find(batch:into:)).
    var batchHits = 0
    var results = [ConsentIndex.Entry?](repeating: nil, count: 1024)
    let batched = seconds {
      views.withUnsafeBufferPointer { all in
        for _ in 0..<10 {
          for start in stride(from: 0, to: all.count, by: 1024) {
            let group = UnsafeBufferPointer(rebasing: all[start..<min(start + 1024, all.count)])
            results.withUnsafeMutableBufferPointer { index.find(batch: group, into: $0) }
            for r in results[0..<group.count] where r != nil { batchHits += 1 }
          }
        }
      }
    }
    report("lookups in blocks of 1024, one core (half misses)", 10_000_000 / batched / 1e6, "M/s")
    precondition(batchHits == hits, "batched and single lookups disagree")
  }
}

func benchDeflate(_ path: String, level: Int) throws {
  let lines = try loadLines(path, limit: 300_000)
  var blocks: [[UInt8]] = []
  var current: [UInt8] = []
  for line in lines {
    current += line
    current.append(0x0A)
    if current.count >= 1 << 20 {
      blocks.append(current)
      current = []
    }
  }
  blocks.append(current)
  let total = blocks.reduce(0) { $0 + $1.count }
  let writer = GzipMemberWriter(level: level)
  var out: [UInt8] = []
  var compressed = 0
  let t = seconds {
    for b in blocks {
      out.removeAll(keepingCapacity: true)
      writer.compress(b, appendingTo: &out)
      compressed += out.count
    }
  }
  let sample = NSTemporaryDirectory() + "cg-deflate-sample"
  _ = FileManager.default.createFile(atPath: sample, contents: Data(blocks.joined()))
  let reference = try secondsOfShell("gzip -\(level) -c \(sample) > \(sample).gz")
  let referenceSize =
    try FileManager.default.attributesOfItem(atPath: sample + ".gz")[.size] as! Int
  report(
    "block deflate level \(level) (\(Codecs.deflater(level: level))), one thread",
    Double(total) / 1e6 / t, "MB/s")
  report("gzip -\(level), same bytes", Double(total) / 1e6 / reference, "MB/s")
  report("block deflate ÷ gzip -\(level)", reference / t, "×")
  report("compression ratio", Double(total) / Double(compressed), ":1")
  report("gzip -\(level) ratio, one stream", Double(total) / Double(referenceSize), ":1")
}

/// `u_%010d` into `out`.
func appendUserId(_ u: Int, to out: inout [UInt8]) {
  out += [UInt8(ascii: "u"), UInt8(ascii: "_")]
  var digits = [UInt8](repeating: 0x30, count: 10)
  var v = u
  for k in stride(from: 9, through: 0, by: -1) {
    digits[k] = UInt8(0x30 + v % 10)
    v /= 10
  }
  out += digits
}

/// Writes the ledger (one to three events per user) and tags (half the users) of the
/// index-file benchmark, unless they are there from an earlier run.
func writeIndexBenchSideFiles(users: Int, ledger: String, tags: String) {
  guard !FileManager.default.fileExists(atPath: tags + ".done") else { return }
  let months = (1...12).map { Array(String(format: "2024-%02d-15T08:30:00Z", $0).utf8) }
  let countries = ["DE", "FR", "US", "IT", "GB", "ES-CN", "JP", "PL"].map { Array($0.utf8) }
  for (path, isLedger) in [(ledger, true), (tags, false)] {
    // A path ending in .gz is written through `gzip -1` (a 400 M-user ledger is 47 GB of CSV).
    var compressor: Process?
    let handle: FileHandle
    if path.hasSuffix(".gz") {
      let pipe = Pipe()
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/bin/sh")
      p.arguments = ["-c", "gzip -1 > '\(path)'"]
      p.standardInput = pipe
      try! p.run()
      compressor = p
      handle = pipe.fileHandleForWriting
    } else {
      _ = FileManager.default.createFile(atPath: path, contents: nil)
      handle = FileHandle(forWritingAtPath: path)!
    }
    var out: [UInt8] = Array(
      (isLedger ? "user_id,purpose,status,recorded_at\n" : "user_id,country\n").utf8)
    var rng = SplitMix64(seed: 11)
    for u in 0..<users {
      let r = rng.next()
      if isLedger {
        for e in 0...Int(r % 3) {
          appendUserId(u, to: &out)
          out += Array(",ai_training,".utf8)
          out += Array((e == 2 || (r >> 8) % 10 == 0 ? "withdrawn," : "granted,").utf8)
          out += months[Int((r >> 16) % 12 + UInt64(e)) % 12]
          out.append(0x0A)
        }
      } else if r % 2 == 0 {
        appendUserId(u, to: &out)
        out.append(UInt8(ascii: ","))
        out += countries[Int((r >> 8) % UInt64(countries.count))]
        out.append(0x0A)
      }
      if out.count > 1 << 22 {
        handle.write(Data(out))
        out.removeAll(keepingCapacity: true)
      }
    }
    handle.write(Data(out))
    handle.closeFile()
    compressor?.waitUntilExit()
  }
  _ = FileManager.default.createFile(atPath: tags + ".done", contents: nil)
}

/// SPEC §9, issue 18: build an index of USERS users with the release binary (time and peak
/// RSS from GNU time), then open + verify it, time `index info`, and batched lookups of
/// random ids, half unknown.
func benchIndexFile(users: Int, folder: String, binary: String) throws {
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  let gzip = ProcessInfo.processInfo.environment["INDEX_GZIP"] != nil
  let ledger = folder + "/ledger-\(users).csv" + (gzip ? ".gz" : "")
  let tags = folder + "/tags-\(users).csv"
  let index = folder + "/index-\(users).cgi"
  let generate = seconds { writeIndexBenchSideFiles(users: users, ledger: ledger, tags: tags) }
  report("side files written (s, skipped when present)", generate, "s")
  let sideBytes = [ledger, tags].reduce(0) {
    $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
  }
  report("side files", Double(sideBytes) / 1e9, "GB")
  // Warm the page cache, as the goal says ("from a warm CSV"), where it fits.
  _ = try secondsOfShell("cat '\(ledger)' '\(tags)' > /dev/null")
  let timing = folder + "/build-time.txt"
  let build = try secondsOfShell(
    "/usr/bin/time -f '%e %M' -o '\(timing)' '\(binary)' index build --output '\(index)' "
      + "--cutoff 2025-01-01T00:00:00Z --consent '\(ledger)' --jurisdictions '\(tags)' "
      + (ProcessInfo.processInfo.environment["INDEX_MEMORY"].map { "--memory \($0) " } ?? ""))
  let measured = (try? String(contentsOfFile: timing, encoding: .utf8))?.split(separator: " ")
  report("build wall time", build, "s")
  report(
    "build peak RSS",
    (measured.flatMap { Double($0.last!.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0)
      / 1024 / 1024, "GiB")
  let size = (try FileManager.default.attributesOfItem(atPath: index)[.size] as? Int) ?? 0
  report("index file", Double(size) / 1e9, "GB")
  report("bytes per user beyond the 12 id bytes", Double(size) / Double(users) - 12, "B")
  var opened: MappedIndex?
  var verifyTimes: [Double] = []
  for _ in 0..<3 {
    verifyTimes.append(
      try seconds {
        let m = try MappedIndex(path: index)
        _ = try m.verify()
        opened = m
      })
  }
  report("open + verify, in page cache (best of 3)", verifyTimes.min()!, "s")
  // Twenty runs in one shell, so that starting the shell is not counted.
  var infoTimes: [Double] = []
  for _ in 0..<3 {
    infoTimes.append(
      try secondsOfShell(
        "for i in $(seq 20); do '\(binary)' index info '\(index)' > /dev/null; done") / 20)
  }
  report("index info, whole process (best of 3 × 20)", infoTimes.min()! * 1000, "ms")
  try benchIndexLookups(opened!, users: users)
}

/// Batched lookups of random `u_%010d` ids, half of them unknown, on one core.
func benchIndexLookups(_ index: MappedIndex, users: Int) throws {
  let lookup = UserLookup.mapped(index.lookup(protection: try ProtectionSet(items: ["eea"])))
  var rng = SplitMix64(seed: 5)
  var probeBytes: [UInt8] = []
  var probeRanges: [Range<Int>] = []
  for _ in 0..<2_000_000 {
    let u = Int(rng.next() % UInt64(users * 2))
    let start = probeBytes.count
    appendUserId(u, to: &probeBytes)
    probeRanges.append(start..<probeBytes.count)
  }
  probeBytes.withUnsafeBytes { all in
    let views = probeRanges.map { UnsafeRawBufferPointer(rebasing: all[$0]) }
    var hits = 0
    var results = [Int?](repeating: nil, count: 4096)
    // Once to fault the pages in, then timed.
    for round in 0..<2 {
      hits = 0
      let t = seconds {
        views.withUnsafeBufferPointer { all in
          for start in stride(from: 0, to: all.count, by: 4096) {
            let group = UnsafeBufferPointer(rebasing: all[start..<min(start + 4096, all.count)])
            results.withUnsafeMutableBufferPointer { lookup.find(batch: group, into: $0) }
            for r in results[0..<group.count] where r != nil { hits += 1 }
          }
        }
      }
      if round == 1 {
        report("batched lookups, one core (half unknown)", Double(views.count) / t / 1e6, "M/s")
      }
    }
    report("share found", Double(hits) / Double(views.count), "")
  }
}

let args = CommandLine.arguments
guard args.count >= 3 else {
  print(
    "usage: consentgate-bench read|scan|deflate FILE | index USERS | index-file USERS [DIR [BINARY]]"
  )
  exit(64)
}
switch args[1] {
case "read": try benchRead(args[2])
case "scan": try benchScan(args[2])
case "index": try benchIndex(users: Int(args[2]) ?? 10_000_000)
case "index-lookups":
  try benchIndexLookups(try MappedIndex(path: args[2]), users: Int(args[3])!)
case "index-file":
  try benchIndexFile(
    users: Int(args[2]) ?? 100_000_000,
    folder: args.count > 3 ? args[3] : NSTemporaryDirectory() + "cg-index-file",
    binary: args.count > 4 ? args[4] : ".build/release/consentgate")
case "deflate": try benchDeflate(args[2], level: args.count > 3 ? Int(args[3])! : 6)
default:
  print("unknown benchmark \(args[1])")
  exit(64)
}
