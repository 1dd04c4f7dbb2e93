// libFuzzer targets for the parts hostile input reaches first. Built with
// `Fuzz/run.sh`, which passes -sanitize=fuzzer,address and -DFUZZING; without FUZZING this
// program replays files instead, so crashes found become plain regression runs.
import CCodecs
import CZlib
import ConsentGate
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

typealias FuzzTarget = (UnsafeRawBufferPointer) -> Void

/// Scanner: validation and extraction must never crash, and results stay in bounds.
// nonisolated(unsafe): libFuzzer calls the target from one thread only.
nonisolated(unsafe) let scanner = RecordScanner(pointers: [
  try! JSONPointer("/user_id"), try! JSONPointer("/geo/country"), try! JSONPointer("/a/0/b~1c"),
  try! JSONPointer(""), try! JSONPointer("/a/*/b", wildcards: true),
  try! JSONPointer("/m/*", wildcards: true),
])

func fuzzScan(_ data: UnsafeRawBufferPointer) {
  guard UTF8Validation.isValid(data) else { return }
  guard scanner.scan(data) else { return }
  for (p, f) in scanner.matches {
    precondition(p >= 4 && f.start >= 0 && f.start <= f.end && f.end <= data.count)
  }
  for k in 0..<4 {
    let f = scanner.field(k)
    precondition(f.start >= 0 && f.start <= f.end && f.end <= data.count)
    if f.kind == .string {
      var out: [UInt8] = []
      JSONString.unescape(UnsafeRawBufferPointer(rebasing: data[f.start..<f.end]), into: &out)
    }
  }
}

let scratchPath = NSTemporaryDirectory() + "cg-fuzz-\(getpid())"

func withScratchFile(_ data: UnsafeRawBufferPointer, _ body: (String) -> Void) {
  let fd = open(scratchPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  if data.count > 0 { _ = write(fd, data.baseAddress, data.count) }
  close(fd)
  body(scratchPath)
}

/// zlib in its own gzip mode (it parses headers and checks CRC-32 and ISIZE itself), member
/// after member; after the last member only NUL bytes may follow. Nil when the data is bad.
func referenceGunzip(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
  let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
  stream.initialize(to: z_stream())
  defer {
    inflateEnd(stream)
    stream.deallocate()
  }
  guard inflateInit2_(stream, 31, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
  else { return nil }
  var out: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 16)
  var at = 0
  while true {
    stream.pointee.next_in = UnsafeMutablePointer(
      mutating: (data.baseAddress! + at).assumingMemoryBound(to: UInt8.self))
    stream.pointee.avail_in = UInt32(data.count - at)
    var rc: Int32 = Z_OK
    repeat {
      let produced = chunk.withUnsafeMutableBytes { c -> Int in
        stream.pointee.next_out = c.baseAddress!.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_out = UInt32(c.count)
        rc = inflate(stream, Z_NO_FLUSH)
        return c.count - Int(stream.pointee.avail_out)
      }
      out += chunk[0..<produced]
    } while rc == Z_OK && (stream.pointee.avail_in > 0 || stream.pointee.avail_out == 0)
    guard rc == Z_STREAM_END else { return nil }
    at = data.count - Int(stream.pointee.avail_in)
    if at == data.count { return out }
    if data[at] == 0 { return data[at...].allSatisfy { $0 == 0 } ? out : nil }
    inflateReset(stream)
  }
}

/// The reader's decoding of `path`, in raw chunks of 61 bytes and reads of 97, or nil when it
/// fails: odd sizes put every state boundary at every offset.
func decodeInOddPieces(_ path: String) -> [UInt8]? {
  var out: [UInt8] = []
  do {
    let reader = try DecodingReader(source: try InputSource(path: path), chunkSize: 61)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 97, alignment: 1)
    defer { buffer.deallocate() }
    while true {
      let n = try reader.read(into: buffer)
      if n == 0 { return out }
      out += buffer[0..<n]
    }
  } catch {
    return nil
  }
}

/// Reader and framer: any bytes decode to blocks or to one of the input errors, and a gzip
/// input decodes exactly as zlib's own gzip mode decodes it (the reader parses headers and
/// checks trailers itself, so this is a differential test of that code).
func fuzzGzip(_ data: UnsafeRawBufferPointer) {
  withScratchFile(data) { path in
    do {
      let framer = BlockFramer(
        reader: try DecodingReader(source: try InputSource(path: path), chunkSize: 64),
        blockTarget: 256, maxRecordBytes: 512)
      var line = 1
      while let block = try framer.next() {
        precondition(block.firstLine == line)
        line += block.lineCount
      }
    } catch {}
    guard data.count >= 2 && data[0] == 0x1f && data[1] == 0x8b else { return }
    precondition(
      decodeInOddPieces(path) == referenceGunzip(data), "the reader and zlib's gzip mode disagree")
  }
}

/// libzstd's streaming decoder given the whole input in one piece, frame after frame: the
/// decoded bytes, or nil when the data is bad or ends inside a frame.
func referenceUnzstd(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
  guard let decoder = cg_zstd_decoder_new() else { return nil }
  defer { cg_zstd_decoder_free(decoder) }
  var out: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 16)
  var at = 0
  var boundary = true
  while true {
    var consumed = 0
    var produced = 0
    let rc = chunk.withUnsafeMutableBytes { c in
      cg_zstd_decode(
        decoder, (data.baseAddress! + at).assumingMemoryBound(to: UInt8.self), data.count - at,
        &consumed, c.baseAddress!.assumingMemoryBound(to: UInt8.self), c.count, &produced)
    }
    if rc < 0 { return nil }
    at += consumed
    out += chunk[0..<produced]
    if rc == 1 {
      boundary = true
    } else if consumed > 0 {
      boundary = false
    }
    if at == data.count && produced == 0 && rc != 1 { return boundary ? out : nil }
    if at == data.count && rc == 1 { return out }
  }
}

/// zstd reader (with the ZSTD trait): any bytes that start like zstd decode, in pieces of odd
/// sizes, exactly as libzstd decodes them whole, or fail where it fails.
func fuzzZstd(_ data: UnsafeRawBufferPointer) {
  guard Codecs.hasZstd, data.count >= 4, DecodingReader.startsZstd(Array(data.prefix(4))) else {
    return
  }
  withScratchFile(data) { path in
    precondition(
      decodeInOddPieces(path) == referenceUnzstd(data), "the reader and libzstd disagree")
  }
}

let ledgerPolicy: Policy = {
  var s = PolicySettings()
  s.cutoff = "2025-01-01T00:00:00Z"
  s.noticeVersions = ["v2"]
  s.maxConsentAge = 30
  s.children = "check"
  return try! s.policy(runStart: Timestamp(seconds: 0))
}()

/// Ledger and tag readers: load or fail with file:line errors, never crash.
func fuzzLedger(_ data: UnsafeRawBufferPointer) {
  withScratchFile(data) { path in
    for lenient in [false, true] {
      var policy = ledgerPolicy
      policy.lenientLedger = lenient
      var loader = SideFileLoader(policy: policy)
      _ = try? loader.load(consent: [path], jurisdictions: [path])
    }
  }
}

nonisolated(unsafe) let decider: RecordDecider = {
  var s = PolicySettings()
  s.cutoff = "2025-01-01T00:00:00Z"
  s.countryPath = ["/geo/country", "/country"]
  s.consentCovers = "since-grant"
  s.embeddedUserPath = ["/includes/tweets/*/author_id", "/reply_to", "/m/*"]
  s.children = "check"
  let policy = try! s.policy(runStart: Timestamp(seconds: 0))
  let dir = NSTemporaryDirectory() + "cg-fuzz-ledger-\(getpid())"
  try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  _ = FileManager.default.createFile(
    atPath: dir + "/l.csv",
    contents: Data(
      "user_id,purpose,status,recorded_at,birth_date\nu1,ai_training,granted,2024-01-01T00:00:00Z,1990-01-01\n5,ai_training,objected,1,\nkid,ai_training,granted,2024-01-01T00:00:00Z,2012-01-01\n"
        .utf8))
  _ = FileManager.default.createFile(
    atPath: dir + "/t.csv", contents: Data("user_id,country\nu1,DE\n5,US\nkid,DE\n".utf8))
  var loader = SideFileLoader(policy: policy)
  try! loader.load(consent: [dir + "/l.csv"], jurisdictions: [dir + "/t.csv"])
  return RecordDecider(policy: policy, index: loader.index)
}()

/// The whole per-record decision: one reason, and a kept record is valid UTF-8 JSON.
func fuzzDecide(_ data: UnsafeRawBufferPointer) {
  let verdict = decider.decide(data)
  if verdict.disposition == .keep {
    precondition(UTF8Validation.isValid(data))
  }
}

/// The built-in deflate encoder: zlib inflates whatever it writes back to the input, within
/// `cg_deflate_bound`, and one byte less room is refused, never overrun. The first byte picks
/// the level; with its high bit set the rest is repeated, each copy a little changed, to some
/// hundred KiB, so that long matches, full blocks of sequences and the window's edge come up.
nonisolated(unsafe) let deflaters = (1...9).map { cg_deflater_new(Int32($0))! }
nonisolated(unsafe) var deflateOut = [UInt8](repeating: 0, count: 1 << 22)
nonisolated(unsafe) var inflateOut = [UInt8](repeating: 0, count: 1 << 22)

func fuzzDeflate(_ data: UnsafeRawBufferPointer) {
  guard let first = data.first else { return }
  let deflater = deflaters[Int(first & 0x7f) % 9]
  var input = Array(data.dropFirst())
  if first & 0x80 != 0, !input.isEmpty {
    let copies = min((1 << 19) / input.count, 64 + Int(first & 0x3f) * 64)
    var grown: [UInt8] = []
    for k in 0..<copies {
      grown += input
      grown[grown.count - 1 - k % input.count] &+= UInt8(truncatingIfNeeded: k)
    }
    input = grown
  }
  let bound = cg_deflate_bound(input.count)
  let written = cg_deflate_raw(deflater, input, input.count, &deflateOut, bound)
  precondition(written > 0 && written <= bound, "deflate: output outside its bound")
  var stream = z_stream()
  inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
  let rc = deflateOut.withUnsafeMutableBufferPointer { compressed in
    inflateOut.withUnsafeMutableBufferPointer { out in
      stream.next_in = compressed.baseAddress
      stream.avail_in = UInt32(written)
      stream.next_out = out.baseAddress
      stream.avail_out = UInt32(out.count)
      return inflate(&stream, Z_FINISH)
    }
  }
  inflateEnd(&stream)
  precondition(rc == Z_STREAM_END && stream.avail_in == 0, "deflate: zlib rejected the stream")
  precondition(
    Int(stream.total_out) == input.count && inflateOut[0..<input.count].elementsEqual(input),
    "deflate: round trip changed the bytes")
  // Exactly one byte too little room, in a buffer of that size: refused, not overrun.
  let tight = UnsafeMutablePointer<UInt8>.allocate(capacity: max(written - 1, 1))
  defer { tight.deallocate() }
  precondition(
    cg_deflate_raw(deflater, input, input.count, tight, written - 1) == 0,
    "deflate: wrote more than the room it had")
}

nonisolated(unsafe) let targets: [String: FuzzTarget] = [
  "scan": fuzzScan, "gzip": fuzzGzip, "ledger": fuzzLedger, "decide": fuzzDecide,
  "deflate": fuzzDeflate, "zstd": fuzzZstd,
]

nonisolated(unsafe) var selected: FuzzTarget = fuzzScan

#if FUZZING
  @_silgen_name("LLVMFuzzerRunDriver")
  func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
  ) -> Int32
#endif

@main
enum FuzzMain {
  static func main() {
    var args = CommandLine.arguments
    guard args.count >= 2, let target = targets[args[1]] else {
      print(
        "usage: consentgate-fuzz scan|gzip|ledger|decide|deflate|zstd [libFuzzer options | files…]")
      exit(64)
    }
    selected = target
    args.remove(at: 1)
    #if FUZZING
      var argc = Int32(args.count)
      var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
      let code = cArgs.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return runFuzzerDriver(&argc, &argv) { data, size in
          selected(UnsafeRawBufferPointer(start: data, count: size))
          return 0
        }
      }
      exit(code)
    #else
      // Replay: every file named (or every file in a folder named) runs once.
      var files: [String] = []
      for path in args.dropFirst() {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
          files += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map
          {
            path + "/" + $0
          }
        } else {
          files.append(path)
        }
      }
      for file in files {
        let data = FileManager.default.contents(atPath: file) ?? Data()
        data.withUnsafeBytes { selected($0) }
      }
      print("replayed \(files.count) inputs")
    #endif
  }
}
