import Foundation
import Testing

@testable import ConsentGate

/// One folder per test process for every test's files, removed when the process exits, so
/// that test runs do not leave thousands of folders in the system's temporary folder.
let testRoot: String = {
  let root = NSTemporaryDirectory() + "consentgate-tests-\(getpid())"
  try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
  atexit { try? FileManager.default.removeItem(atPath: testRoot) }
  return root
}()

/// A fresh temporary folder for one test.
func temporaryFolder(_ label: String = #function) -> String {
  let clean = label.filter { $0.isLetter || $0.isNumber }
  let path = testRoot + "/cg-\(clean)-\(UUID().uuidString.prefix(8))"
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

@discardableResult
func writeFile(_ path: String, _ bytes: [UInt8]) -> String {
  _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
  return path
}

@discardableResult
func writeFile(_ path: String, _ text: String) -> String {
  writeFile(path, Array(text.utf8))
}

func readBytes(_ path: String) -> [UInt8] {
  Array(FileManager.default.contents(atPath: path) ?? Data())
}

/// Gzip of `bytes` by zlib, one member.
func gzipMember(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
  var out: [UInt8] = []
  GzipMemberWriter(level: level).compress(bytes, appendingTo: &out)
  return out
}

/// Runs a program, returning its exit status, stdout and stderr.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], stdin: [UInt8]? = nil) -> (
  status: Int32, stdout: [UInt8], stderr: String
) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let out = Pipe()
  let err = Pipe()
  process.standardOutput = out
  process.standardError = err
  let input = Pipe()
  process.standardInput = input
  try! process.run()
  if let stdin {
    input.fileHandleForWriting.write(Data(stdin))
  }
  try? input.fileHandleForWriting.close()
  let outData = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, Array(outData), String(decoding: errData, as: UTF8.self))
}

/// Runs a shell command line (for gzip, python3 and friends).
@discardableResult
func shell(_ command: String) -> (status: Int32, stdout: [UInt8], stderr: String) {
  runProcess("/bin/sh", ["-c", command])
}

func haveCommand(_ name: String) -> Bool {
  shell("command -v \(name) >/dev/null 2>&1").status == 0
}

/// Decodes a whole input with the reading layer, in small reads: the decoded bytes and the
/// reader's warnings.
func decodeWithWarnings(_ path: String) throws(InputError) -> (bytes: [UInt8], warnings: [String]) {
  let reader = try DecodingReader(source: try InputSource(path: path), chunkSize: 7)
  var out: [UInt8] = []
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 13, alignment: 1)
  defer { buffer.deallocate() }
  while true {
    let n = try reader.read(into: buffer)
    if n == 0 { break }
    out.append(contentsOf: buffer[0..<n])
  }
  return (out, reader.warnings)
}

/// Decodes a whole input with the reading layer: the decoded bytes, or the error.
func decodeAll(_ path: String) -> Result<[UInt8], InputError> {
  do {
    return .success(try decodeWithWarnings(path).bytes)
  } catch {
    return .failure(error)
  }
}

/// A cutoff used across tests.
let testCutoff = Timestamp.parseRFC3339("2025-06-01T00:00:00Z")!

/// A policy at ``testCutoff`` with changes applied.
func makePolicy(_ change: (inout PolicySettings) -> Void = { _ in }) throws -> Policy {
  var s = PolicySettings()
  s.cutoff = "2025-06-01T00:00:00Z"
  change(&s)
  return try s.policy(runStart: testCutoff)
}

/// Loads ledger and tag CSV text into an index for `policy`.
func loadIndex(policy: Policy, ledger: String? = nil, tags: String? = nil) throws -> ConsentIndex {
  let dir = temporaryFolder("index")
  var consent: [String] = []
  var juris: [String] = []
  if let ledger { consent.append(writeFile(dir + "/ledger.csv", ledger)) }
  if let tags { juris.append(writeFile(dir + "/tags.csv", tags)) }
  var loader = SideFileLoader(policy: policy)
  try loader.load(consent: consent, jurisdictions: juris)
  return loader.index
}

/// Decides one record given as text.
func decide(_ record: String, policy: Policy, index: ConsentIndex) -> Verdict {
  let decider = RecordDecider(policy: policy, index: index)
  return Array(record.utf8).withUnsafeBytes { decider.decide($0) }
}

/// The consentgate binary built beside the tests; `CONSENTGATE_BINARY` names another build
/// (to show that a new test fails on an older one).
let consentgateBinary: String = {
  if let other = ProcessInfo.processInfo.environment["CONSENTGATE_BINARY"] { return other }
  let candidates = [
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
      + "/consentgate",
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path + "/.build/debug/consentgate",
  ]
  for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
  return candidates.last!
}()
