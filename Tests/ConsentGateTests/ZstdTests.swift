import Foundation
import Testing

@testable import ConsentGate

/// SPEC §12. The decoding tests need the `ZSTD` trait (CI runs them in its traits build); the
/// default build is held to "zstd support not built".
@Suite struct ZstdBuildTests {
  @Test func defaultBuildReportsZstdAsNotBuilt() throws {
    let dir = temporaryFolder()
    // A zstd frame magic, then anything: the format is known from the magic alone.
    writeFile(dir + "/a.jsonl.zst", [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0A])
    writeFile(dir + "/b.jsonl", "{\"user_id\":\"u1\"}\n")
    let r = cg([
      "filter", "--quiet", "--out", dir + "/o", "--cutoff", "2025-01-01T00:00:00Z",
      dir + "/a.jsonl.zst", dir + "/b.jsonl",
    ])
    let inputs = try reportJSON(dir + "/o")["inputs"] as! [[String: Any]]
    if Codecs.hasZstd {
      #expect(inputs[0]["status"] as? String != "unreadable")
    } else {
      #expect(r.status == 2)
      #expect(inputs[0]["status"] as? String == "unreadable")
      #expect(inputs[0]["error"] as? String == "zstd support not built")
      #expect(inputs[1]["status"] as? String == "ok")
      let z = cg([
        "filter", "--quiet", "--out", dir + "/z", "--compression", "zstd", dir + "/b.jsonl",
      ])
      #expect(z.status == 64)
    }
  }

  @Test func magicNumbersDecideTheFormat() {
    #expect(DecodingReader.startsZstd([0x28, 0xB5, 0x2F, 0xFD, 0x04]))
    #expect(DecodingReader.startsZstd([0x5A, 0x2A, 0x4D, 0x18]))
    #expect(!DecodingReader.startsZstd([0x60, 0x2A, 0x4D, 0x18]))
    #expect(!DecodingReader.startsZstd(Array("{\"a\"".utf8)))
    // A stream cut inside its magic number is still zstd (then truncated); `P` alone is text.
    #expect(DecodingReader.startsZstd([0x28]))
    #expect(DecodingReader.startsZstd([0x28, 0xB5, 0x2F]))
    #expect(!DecodingReader.startsZstd([0x50]))
    #expect(DecodingReader.startsZstd([0x50, 0x2A]))
  }

  @Test func outputNamesDropGzAndZst() {
    #expect(Filter.outputName(forInput: "/x/a.jsonl.zst", compression: .gzip) == "a.jsonl.gz")
    #expect(Filter.outputName(forInput: "a.jsonl.zst", compression: .zstd) == "a.jsonl.zst")
    #expect(Filter.outputName(forInput: "a.jsonl.gz", compression: .zstd) == "a.jsonl.zst")
    #expect(Filter.outputName(forInput: "a.jsonl.zst", compression: .none) == "a.jsonl")
    #expect(Filter.outputName(forInput: "-", compression: .zstd) == "stdin.jsonl.zst")
  }
}

/// Bytes of `text` as zstd frames of `pieces` (libzstd through the package's writer).
private func zstdFrames(_ pieces: [String], level: Int = 3) -> [UInt8] {
  let writer = ZstdFrameWriter(level: level)
  var out: [UInt8] = []
  for p in pieces { writer.compress(Array(p.utf8), appendingTo: &out) }
  return out
}

private let skippable: [UInt8] = [0x5E, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 0xAA, 0xBB, 0xCC]

/// Where each frame of `data` ends (zstd frame format, RFC 8878), and whether each has a
/// content size and a checksum.
private func frames(_ data: [UInt8]) -> [(end: Int, contentSize: Bool, checksum: Bool)]? {
  var at = 0
  var found: [(Int, Bool, Bool)] = []
  while at < data.count {
    guard at + 6 <= data.count, Array(data[at..<(at + 4)]) == [0x28, 0xB5, 0x2F, 0xFD] else {
      return nil
    }
    let fhd = data[at + 4]
    let single = fhd & 0x20 != 0
    let fcsField = [0, 2, 4, 8][Int(fhd >> 6)]
    let fcs = fcsField == 0 && single ? 1 : fcsField
    let dictID = [0, 1, 2, 4][Int(fhd & 3)]
    at += 5 + (single ? 0 : 1) + dictID + fcs
    var last = false
    while !last {
      guard at + 3 <= data.count else { return nil }
      let header = Int(data[at]) | Int(data[at + 1]) << 8 | Int(data[at + 2]) << 16
      last = header & 1 != 0
      let type = (header >> 1) & 3
      let size = header >> 3
      at += 3 + (type == 1 ? 1 : size)
    }
    let checksum = fhd & 4 != 0
    if checksum { at += 4 }
    found.append((at, fcs > 0, checksum))
  }
  return at == data.count ? found : nil
}

@Suite(.enabled(if: Codecs.hasZstd)) struct ZstdReadingTests {
  private func decode(_ bytes: [UInt8]) -> Result<[UInt8], InputError> {
    let dir = temporaryFolder("zstd")
    return decodeAll(writeFile(dir + "/in.zst", bytes))
  }

  @Test func framesAndSkippableFramesAnywhere() throws {
    let a = zstdFrames(["{\"a\":1}\n", "{\"b\":2}\n"])
    let b = zstdFrames(["{\"c\":3}\n"])
    let whole = Array("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n".utf8)
    for bytes in [
      a + b, skippable + a + b, a + skippable + b, a + b + skippable,
      skippable + a + skippable + skippable + b,
    ] {
      #expect(try decode(bytes).get() == whole)
    }
    #expect(try decode(skippable).get() == [])
    #expect(try decode(skippable + skippable).get() == [])
  }

  /// A cut at a frame's end is a shorter valid stream; anywhere else the input is truncated.
  @Test func truncationAtEveryOffset() throws {
    let parts = ["{\"user_id\":\"u1\"}\n", "{\"user_id\":\"u2\",\"x\":[1,2,3]}\n", "\n"]
    let data = zstdFrames(parts) + skippable + zstdFrames(["{\"z\":0}\n"])
    var boundaries: Set<Int> = []
    var at = 0
    for p in parts {
      at += zstdFrames([p]).count
      boundaries.insert(at)
    }
    boundaries.insert(at + skippable.count)
    for cut in 1..<data.count {
      let result = decode(Array(data[..<cut]))
      if boundaries.contains(cut) {
        #expect(throws: Never.self, "cut at \(cut)") { try result.get() }
      } else {
        guard case .failure(.truncated) = result else {
          Issue.record("cut at \(cut): \(result)")
          continue
        }
      }
    }
  }

  @Test func checksumFlipsAndTrailingBytesAreCorrupt() throws {
    let data = zstdFrames(["{\"user_id\":\"u1\"}\n"])
    let layout = try #require(frames(data))
    #expect(layout.allSatisfy { $0.checksum && $0.contentSize })
    for k in (data.count - 4)..<data.count {
      var flipped = data
      flipped[k] ^= 0x01
      guard case .failure(.corrupt) = decode(flipped) else {
        Issue.record("flipped checksum byte \(k) not corrupt")
        continue
      }
    }
    // zstd has no NUL padding convention, and nothing else may follow the last frame.
    for tail: [UInt8] in [[0], [0, 0, 0, 0, 0], Array("x".utf8), [0x28, 0xB5, 0x2F, 0xFC]] {
      guard case .failure(.corrupt) = decode(data + tail) else {
        Issue.record("tail \(tail) not corrupt")
        continue
      }
    }
    // A cut magic number after the last frame is truncation, not garbage.
    guard case .failure(.truncated) = decode(data + [0x28, 0xB5]) else {
      Issue.record("cut magic not truncated")
      return
    }
  }

  /// A frame asking for a window over 128 MiB is corrupt, without the allocation.
  @Test func windowBombIsCorrupt() throws {
    // Frame header: no checksum, no content size, window descriptor 2^31; one raw block.
    let bomb: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xA8, 0x09, 0x00, 0x00, 0x78]
    guard case .failure(.corrupt) = decode(bomb) else {
      Issue.record("window bomb not corrupt")
      return
    }
    // 2^27 is the largest window accepted.
    let fine: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x88, 0x09, 0x00, 0x00, 0x78]
    #expect(try decode(fine).get() == Array("x".utf8))
  }

  @Test(
    .enabled(if: haveCommand("zstd")),
    arguments: ["-1", "-3", "-19", "--long=27 -3", "--ultra -22"])
  func zstdCommandLineInputs(_ flags: String) throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 3_000)
    let plain = dir + "/plain.jsonl"
    shell("gzip -dc '\(dir)/\(w.exports[0])' > '\(plain)'")
    #expect(shell("zstd -q \(flags) -c '\(plain)' > '\(dir)/in.zst'").status == 0)
    #expect(try decodeAll(dir + "/in.zst").get() == readBytes(plain))
  }
}

@Suite(.enabled(if: Codecs.hasZstd), .serialized) struct ZstdOutputTests {
  /// zstd output decodes (by the zstd CLI too) to the uncompressed output's bytes, with the
  /// same bytes for any thread count, one frame per block with content size and checksum.
  @Test func zstdOutputRoundTrips() throws {
    let dir = temporaryFolder()
    let w = try generatedExport(dir, records: 30_000)
    let base = [
      "filter", "--quiet", "--consent", dir + "/" + w.consent, "--jurisdictions",
      dir + "/" + w.jurisdictions, "--cutoff", "2026-01-01T00:00:00Z",
    ]
    let input = dir + "/" + w.exports[0]
    #expect(cg(base + ["--out", dir + "/none", "--compression", "none", input]).status == 0)
    for threads in ["1", "2"] {
      let r = cg(
        base + [
          "--out", dir + "/z\(threads)", "--compression", "zstd", "--threads", threads, input,
        ])
      #expect(r.status == 0)
    }
    let name = "posts.jsonl"
    for part in ["kept", "quarantine"] {
      let z1 = readBytes("\(dir)/z1/\(part)/\(name).zst")
      #expect(z1 == readBytes("\(dir)/z2/\(part)/\(name).zst"))
      let layout = try #require(frames(z1))
      #expect(layout.count >= 1)
      #expect(layout.allSatisfy { $0.contentSize && $0.checksum })
      #expect(
        try decodeAll("\(dir)/z1/\(part)/\(name).zst").get()
          == readBytes("\(dir)/none/\(part)/\(name)"))
      if haveCommand("zstd") {
        #expect(
          shell("zstd -dc '\(dir)/z1/\(part)/\(name).zst'").stdout
            == readBytes("\(dir)/none/\(part)/\(name)"))
      }
    }
    let report = try reportJSON(dir + "/z1")
    let policy = report["policy"] as! [String: Any]
    #expect(policy["compression"] as? String == "zstd")
    #expect(policy["level"] as? Int == 3)
    #expect(((report["tool"] as! [String: Any])["codec"] as! String).contains("libzstd"))
  }

  @Test func emptyOutputIsOneEmptyFrame() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", "\n")
    #expect(
      cg(["filter", "--quiet", "--out", dir + "/o", "--compression", "zstd", dir + "/a.jsonl"])
        .status == 0)
    let kept = readBytes(dir + "/o/kept/a.jsonl.zst")
    #expect(frames(kept)?.count == 1)
    #expect(try decodeAll(dir + "/o/kept/a.jsonl.zst").get() == [])
  }

  @Test func levelsAreCheckedPerCompression() {
    let dir = temporaryFolder()
    writeFile(dir + "/a.jsonl", "{\"user_id\":\"u1\"}\n")
    func status(_ args: [String]) -> Int32 {
      cg(["filter", "--quiet", "--out", dir + "/o"] + args + [dir + "/a.jsonl"]).status
    }
    #expect(status(["--compression", "zstd", "--level", "19"]) == 0)
    #expect(status(["--compression", "zstd", "--level", "20"]) == 64)
    #expect(status(["--compression", "gzip", "--level", "10"]) == 64)
  }
}
