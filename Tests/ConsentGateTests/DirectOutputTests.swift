import CScanKernels
import Crypto
import Foundation
import Testing

@testable import ConsentGate

#if canImport(Glibc)
  import Glibc
#endif

/// Whether the file system of `folder` takes `O_DIRECT` opens (ext4 and tmpfs on recent
/// kernels do): where it does, an ``OutputFile`` asked for direct writes must make them.
private func folderTakesDirectIO(_ folder: String) -> Bool {
  let probe = folder + "/.direct-probe"
  let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard fd >= 0 else { return false }
  defer {
    close(fd)
    unlink(probe)
  }
  return cg_set_direct(fd) == 0
}

/// Bytes that differ at every offset, so a piece written twice or at the wrong place shows.
private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
}

@Suite(.timeLimit(.minutes(2))) struct DirectOutputTests {
  static let buffer = DirectWriter.defaultBufferSize

  /// Lengths around the alignment and the buffer size: the tail that a direct write cannot
  /// take, a buffer filled exactly, and several buffers in flight.
  static let lengths = [
    0, 1, 4095, 4096, 4097, 100_000, buffer - 1, buffer, buffer + 1, 2 * buffer + 4097,
    3 * buffer + 12_345,
  ]

  @Test(arguments: lengths)
  func directFileHoldsExactlyTheBytes(_ length: Int) throws {
    let dir = temporaryFolder()
    let data = pattern(length, seed: UInt64(length))
    let file = try OutputFile(finalPath: dir + "/out", direct: true)
    #expect(file.isDirect == folderTakesDirectIO(dir))
    // Pieces of uneven sizes, as blocks of records come.
    var rng = SplitMix64(seed: 7)
    var at = 0
    try data.withUnsafeBytes { raw in
      while at < length {
        let n = min(length - at, Int(rng.next() % 700_000) + 1)
        try file.write(UnsafeRawBufferPointer(rebasing: raw[at..<(at + n)]))
        at += n
      }
    }
    let digest = try file.commit()
    #expect(readBytes(dir + "/out") == data)
    #expect(digest == hexString(SHA256.hash(data: data)))
    #expect(file.bytesWritten == UInt64(length))
    // No sparse tail is left from setting the size ahead.
    #expect(
      (try FileManager.default.attributesOfItem(atPath: dir + "/out")[.size] as? Int) == length)
    let left = try FileManager.default.contentsOfDirectory(atPath: dir)
    #expect(left == ["out"])
  }

  /// Runs of lines with and without their LF, as the block processor hands them over: the
  /// direct and the buffered file get the same bytes and hash.
  @Test func runsWrittenAlikeDirectAndBuffered() throws {
    let dir = temporaryFolder()
    let block = pattern(3 * DirectOutputTests.buffer, seed: 3)
    var runs: [ByteRun] = []
    var rng = SplitMix64(seed: 11)
    var start = 0
    while start < block.count {
      let end = min(block.count, start + Int(rng.next() % 50_000) + 1)
      runs.append(ByteRun(start: start, end: end, addLF: rng.next() % 3 == 0))
      start = end + Int(rng.next() % 2_000)
    }
    var digests: [String] = []
    for direct in [true, false] {
      let file = try OutputFile(finalPath: dir + "/out-\(direct)", direct: direct)
      try block.withUnsafeBytes { try file.write(runs: runs, of: $0) }
      digests.append(try file.commit())
    }
    #expect(digests[0] == digests[1])
    #expect(readBytes(dir + "/out-true") == readBytes(dir + "/out-false"))
    var expected: [UInt8] = []
    for run in runs {
      expected += block[run.start..<run.end]
      if run.addLF { expected.append(0x0A) }
    }
    #expect(readBytes(dir + "/out-true") == expected)
  }

  /// A direct write the kernel refuses (here a length that is not a multiple of the block
  /// size) is made again through the page cache, and so is the rest of the file.
  @Test func refusedDirectWriteFallsBackToThePageCache() throws {
    let dir = temporaryFolder()
    try #require(folderTakesDirectIO(dir), "needs a file system with O_DIRECT")
    let data = pattern(10_000, seed: 5)
    let file = try OutputFile(
      in: OutputFolder(path: dir), name: "out", direct: true, bufferSize: 1_000)
    #expect(file.isDirect)
    try data.withUnsafeBytes { try file.write($0) }
    #expect(!file.isDirect)
    let digest = try file.commit()
    #expect(readBytes(dir + "/out") == data)
    #expect(digest == hexString(SHA256.hash(data: data)))
  }

  /// Small buffers, so that the ring wraps many times with every buffer in flight, and pieces
  /// from empty to several buffers long: the file is exact whatever the buffer size, aligned
  /// (direct all the way) or not (refused at the first write, then buffered).
  @Test(arguments: [4096, 8192, 3 * 4096, 5000])
  func ringWrapsWithPiecesOfAnySize(_ bufferSize: Int) throws {
    let dir = temporaryFolder()
    var rng = SplitMix64(seed: UInt64(bufferSize))
    let data = pattern(2_000_000, seed: 1)
    let file = try OutputFile(
      in: OutputFolder(path: dir), name: "out", direct: true, bufferSize: bufferSize)
    var at = 0
    try data.withUnsafeBytes { raw in
      while at < data.count {
        let n = min(data.count - at, Int(rng.next() % UInt64(3 * bufferSize + 1)))
        try file.write(UnsafeRawBufferPointer(rebasing: raw[at..<(at + n)]))
        at += n
      }
    }
    #expect(file.isDirect == (bufferSize % 4096 == 0 && folderTakesDirectIO(dir)))
    let digest = try file.commit()
    #expect(readBytes(dir + "/out") == data)
    #expect(digest == hexString(SHA256.hash(data: data)))
  }

  /// The input hashed two lanes at a time with the file's own bytes, between writes, in
  /// chunks of any size and at any point of the ring: both digests stay exact, also with
  /// small buffers that wrap while bytes wait to be hashed.
  @Test(arguments: [4096, DirectOutputTests.buffer])
  func inputHashedInPairsKeepsBothDigests(_ bufferSize: Int) throws {
    let dir = temporaryFolder()
    var rng = SplitMix64(seed: UInt64(bufferSize) &+ 3)
    let output = pattern(3 * DirectOutputTests.buffer + 777, seed: 21)
    let input = pattern(2_000_000 + 13, seed: 22)
    let file = try OutputFile(
      in: OutputFolder(path: dir), name: "out", direct: true, bufferSize: bufferSize)
    var inputHash = SHA256Stream()
    var o = 0
    var i = 0
    try output.withUnsafeBytes { out in
      try input.withUnsafeBytes { inp in
        while o < output.count || i < input.count {
          if o < output.count && rng.next() % 2 == 0 {
            let n = min(output.count - o, Int(rng.next() % 300_000))
            try file.write(UnsafeRawBufferPointer(rebasing: out[o..<(o + n)]))
            o += n
          } else if i < input.count {
            let n = min(input.count - i, Int(rng.next() % 300_000))
            file.hash(pairing: UnsafeRawBufferPointer(rebasing: inp[i..<(i + n)]), with: &inputHash)
            i += n
          }
        }
      }
    }
    let digest = try file.commit()
    #expect(readBytes(dir + "/out") == output)
    #expect(digest == hexString(SHA256.hash(data: output)))
    #expect(hexString(inputHash.finalize()) == hexString(SHA256.hash(data: input)))
  }

  /// Giving a file up with writes still in flight waits for them before the buffers go (the
  /// address sanitizer run would see the kernel write into freed memory otherwise) and
  /// leaves nothing behind.
  @Test func discardWithWritesInFlight() throws {
    let dir = temporaryFolder()
    let data = pattern(2 * DirectOutputTests.buffer + 10, seed: 9)
    for _ in 0..<3 {
      let file = try OutputFile(finalPath: dir + "/out", direct: true)
      try data.withUnsafeBytes { try file.write($0) }
      file.discard()
    }
    do {
      let file = try OutputFile(finalPath: dir + "/out", direct: true)
      try data.withUnsafeBytes { try file.write($0) }
      // Dropped without discard: deinit removes it.
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }

  /// The command line's `--no-direct-io` changes how outputs are written, never what: the
  /// same files and report hashes, compressed or not.
  @Test(arguments: ["none", "gzip"])
  func filterOutputsAlikeWithAndWithoutDirectIO(_ compression: String) throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 30_000, users: 3_000)
    let common = [
      "filter", "--quiet", "--compression", compression, "--cutoff", "2026-01-01T00:00:00Z",
      "--consent", dir + "/" + w.consent, "--jurisdictions", dir + "/" + w.jurisdictions,
      dir + "/" + w.exports[0],
    ]
    #expect(cg(common + ["--out", dir + "/direct"]).status == 0)
    #expect(cg(common + ["--out", dir + "/buffered", "--no-direct-io"]).status == 0)
    let a = try reportJSON(dir + "/direct")["outputs"] as! [[String: Any]]
    let b = try reportJSON(dir + "/buffered")["outputs"] as! [[String: Any]]
    #expect(a.map { $0["sha256"] as! String } == b.map { $0["sha256"] as! String })
    #expect(a.map { $0["bytes"] as! Int } == b.map { $0["bytes"] as! Int })
    if compression == "none" {
      // More than a buffer: writes were in flight.
      #expect(a.contains { ($0["bytes"] as! Int) > DirectOutputTests.buffer })
    }
    for output in a {
      let path = output["path"] as! String
      #expect(readBytes(dir + "/direct/" + path) == readBytes(dir + "/buffered/" + path))
    }
  }
}
