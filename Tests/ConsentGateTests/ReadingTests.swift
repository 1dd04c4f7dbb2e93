import Crypto
import Foundation
import Testing

@testable import ConsentGate

@Suite struct GzipReadingTests {
  let sample = Array(
    (1...200).map { "{\"user_id\":\"u\($0)\",\"text\":\"hello \($0)\"}\n" }.joined().utf8)

  @Test func plainInputPassesThrough() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/a.jsonl", sample)
    #expect(try decodeAll(path).get() == sample)
  }

  @Test func gzipIsDetectedByMagicBytesNotName() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/looks-plain.jsonl", gzipMember(sample))
    #expect(try decodeAll(path).get() == sample)
    let plainNamedGz = writeFile(dir + "/b.jsonl.gz", sample)
    #expect(try decodeAll(plainNamedGz).get() == sample)
  }

  @Test func inputShorterThanMagicIsPlain() throws {
    let dir = temporaryFolder()
    #expect(try decodeAll(writeFile(dir + "/one", [0x1f])).get() == [0x1f])
    #expect(try decodeAll(writeFile(dir + "/zero", [UInt8]())).get() == [])
  }

  @Test func concatenatedMembersAreOneStream() throws {
    let dir = temporaryFolder()
    let a = Array(sample[0..<1000])
    let b = Array(sample[1000...])
    let path = writeFile(dir + "/ab.gz", gzipMember(a) + gzipMember(b, level: 1))
    #expect(try decodeAll(path).get() == sample)
  }

  @Test func gnuGzipAndCatOfTwoFiles() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/x", sample)
    shell("cd \(dir) && gzip -c -6 x > x.gz && cat x.gz x.gz > xx.gz")
    #expect(try decodeAll(dir + "/x.gz").get() == sample)
    #expect(try decodeAll(dir + "/xx.gz").get() == sample + sample)
  }

  @Test func pythonGzipModuleWithNameAndMtime() throws {
    let dir = temporaryFolder()
    writeFile(dir + "/x", sample)
    let r = shell(
      "cd \(dir) && python3 -c \"import gzip,shutil; shutil.copyfileobj(open('x','rb'), gzip.open('x.gz','wb',compresslevel=9))\""
    )
    try #require(r.status == 0)
    #expect(try decodeAll(dir + "/x.gz").get() == sample)
  }

  @Test(.enabled(if: haveCommand("pigz"))) func pigzMultiBlockOutput() throws {
    let dir = temporaryFolder()
    var big: [UInt8] = []
    for _ in 0..<200 { big += sample }
    writeFile(dir + "/x", big)
    shell("cd \(dir) && pigz -b 32 -p 2 -c x > x.gz && pigz -c x >> x.gz")
    #expect(try decodeAll(dir + "/x.gz").get() == big + big)
  }

  @Test func truncationAtEveryOffsetIsTruncated() throws {
    let dir = temporaryFolder()
    let whole = gzipMember(Array(sample[0..<600]))
    // From 2 bytes on (the magic is there) every prefix is a cut gzip stream.
    for cut in 2..<whole.count {
      let path = writeFile(dir + "/t.gz", Array(whole[0..<cut]))
      let result = decodeAll(path)
      guard case .failure(.truncated) = result else {
        Issue.record("prefix of \(cut) bytes was not reported as truncated: \(result)")
        continue
      }
    }
  }

  @Test func truncatedSecondMemberIsTruncated() throws {
    let dir = temporaryFolder()
    let m = gzipMember(sample)
    let path = writeFile(dir + "/t.gz", m + Array(m[0..<20]))
    guard case .failure(.truncated) = decodeAll(path) else {
      Issue.record("not truncated")
      return
    }
  }

  @Test(arguments: [("crc", 8), ("isize", 4)])
  func flippedTrailerByteIsCorrupt(field: String, fromEnd: Int) throws {
    let dir = temporaryFolder()
    var m = gzipMember(sample)
    m[m.count - fromEnd] ^= 0x01
    let path = writeFile(dir + "/c.gz", m)
    guard case .failure(.corrupt) = decodeAll(path) else {
      Issue.record("flipped \(field) byte not reported as corrupt")
      return
    }
  }

  @Test func reservedFlagBitsAreCorrupt() throws {
    let dir = temporaryFolder()
    var m = gzipMember(sample)
    m[3] |= 0x20
    guard case .failure(.corrupt) = decodeAll(writeFile(dir + "/c.gz", m)) else {
      Issue.record("reserved flag not corrupt")
      return
    }
  }

  @Test func corruptDeflateDataIsCorrupt() throws {
    let dir = temporaryFolder()
    var m = gzipMember(sample)
    for i in 12..<40 { m[i] = 0xFF }
    guard case .failure(.corrupt) = decodeAll(writeFile(dir + "/c.gz", m)) else {
      Issue.record("bad deflate data not corrupt")
      return
    }
  }

  @Test func trailingGarbageIsCorrupt() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/g.gz", gzipMember(sample) + Array("garbage".utf8))
    guard case .failure(.corrupt) = decodeAll(path) else {
      Issue.record("trailing garbage not corrupt")
      return
    }
  }

  @Test func nulPaddingIsAcceptedWithWarning() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/p.gz", gzipMember(sample) + [UInt8](repeating: 0, count: 100))
    let (out, warnings) = try decodeWithWarnings(path)
    #expect(out == sample)
    #expect(warnings.count == 1)
  }

  @Test func nulPaddingThenGarbageIsCorrupt() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/p.gz", gzipMember(sample) + [0, 0, 0x41])
    guard case .failure(.corrupt) = decodeAll(path) else {
      Issue.record("garbage after padding not corrupt")
      return
    }
  }

  @Test func missingFileAndDirectoryAreUnreadable() throws {
    let dir = temporaryFolder()
    #expect(throws: InputError.self) { try InputSource(path: dir + "/nope") }
    do {
      _ = try InputSource(path: dir)
      Issue.record("a directory opened")
    } catch {
      #expect(error.status == .unreadable)
    }
  }
}

/// Hashes lent chunks as late as the reader allows: only when it waits for a ticket (to reuse
/// a buffer, or at its end). A reader that overwrote a lent chunk before waiting would change
/// the digest.
final class LazyLender: RawInputHasher {
  private var pending: [(chunk: UnsafeRawBufferPointer, copy: [UInt8]?)] = []
  private var hashedThrough = -1
  private var hasher = SHA256()
  private(set) var waits = 0

  func hashCopy(of chunk: UnsafeRawBufferPointer) { pending.append((chunk, Array(chunk))) }
  func hashInPlace(_ chunk: UnsafeRawBufferPointer) -> Int {
    pending.append((chunk, nil))
    return hashedThrough + pending.count
  }
  func waitUntilHashed(_ ticket: Int) {
    waits += 1
    while hashedThrough < ticket {
      let (chunk, copy) = pending.removeFirst()
      if let copy { hasher.update(data: copy) } else { hasher.update(bufferPointer: chunk) }
      hashedThrough += 1
    }
  }
  /// Hashes what is left; by now only copies may be (lent memory may be gone).
  func finish() -> String {
    for (_, copy) in pending { hasher.update(data: copy!) }
    pending = []
    return hexString(hasher.finalize())
  }
}

@Test(arguments: [false, true])
func lentInputChunksAreHashedUnchanged(gzip: Bool) throws {
  let text = Array((1...3000).map { "{\"user_id\":\"u\($0)\",\"n\":\($0)}\n" }.joined().utf8)
  let file = gzip ? gzipMember(text, level: 1) : text
  let path = writeFile(temporaryFolder() + "/in", file)
  let lender = LazyLender()
  var out: [UInt8] = []
  do {
    let source = try InputSource(path: path)
    source.rawHasher = lender
    // Small chunks, so the reader goes round its buffers many times.
    let reader = try DecodingReader(source: source, chunkSize: 64)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 1)
    defer { buffer.deallocate() }
    while case let n = try reader.read(into: buffer), n > 0 {
      out.append(contentsOf: buffer[0..<n])
    }
  }  // The reader's end waits for its last lent chunk.
  #expect(out == text)
  if gzip { #expect(lender.waits > file.count / 64 - 8) }
  #expect(lender.finish() == hexString(SHA256.hash(data: file)))
}

/// CRC-32 (gzip polynomial), bit by bit: written here so header CRCs in tests do not come
/// from the code under test.
func referenceCRC32(_ bytes: [UInt8]) -> UInt32 {
  var crc: UInt32 = 0xFFFF_FFFF
  for b in bytes {
    crc ^= UInt32(b)
    for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
  }
  return ~crc
}

/// The folded CRC-32 of the zlib reading path against the bitwise reference: every length
/// around the fold's 16- and 64-byte steps, several alignments, and continued updates.
@Test func foldedCRC32MatchesTheReference() {
  var rng = SplitMix64(seed: 11)
  let bytes = (0..<1200).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
  bytes.withUnsafeBytes { all in
    for offset in [0, 1, 7, 13] {
      for length in Array(0..<200) + [255, 256, 257, 1023, 1024, 1100]
      where offset + length <= all.count {
        let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
        let expected = referenceCRC32(Array(slice))
        #expect(CRC32.update(0, slice) == expected, "length \(length) offset \(offset)")
        // In two pieces, as inflate output arrives.
        let cut = length / 3
        let first = CRC32.update(0, UnsafeRawBufferPointer(rebasing: slice[0..<cut]))
        #expect(CRC32.update(first, UnsafeRawBufferPointer(rebasing: slice[cut...])) == expected)
      }
    }
  }
}

/// Optional header fields (RFC 1952 FEXTRA, FNAME, FCOMMENT, FHCRC), read in 7-byte pieces
/// by whichever inflater the build uses (zlib, or the header parser of the ISA-L path).
@Suite struct GzipHeaderTests {
  let sample = Array(
    (1...300).map { "{\"user_id\":\"u\($0)\",\"text\":\"hi \($0)\"}\n" }.joined().utf8)

  /// A member of `sample` whose header carries every optional field.
  func member(headerCRC: Bool, breakCRC: Bool = false) -> [UInt8] {
    let plain = gzipMember(sample)
    var header = Array(plain[0..<10])
    header[3] = 0x04 | 0x08 | 0x10 | (headerCRC ? 0x02 : 0)
    header += [5, 0] + Array("extra".utf8)
    header += Array("name.jsonl".utf8) + [0]
    header += Array("a comment".utf8) + [0]
    if headerCRC {
      var crc = UInt16(truncatingIfNeeded: referenceCRC32(header))
      if breakCRC { crc ^= 1 }
      header += [UInt8(truncatingIfNeeded: crc), UInt8(crc >> 8)]
    }
    return header + plain[10...]
  }

  @Test func everyOptionalFieldIsSkipped() throws {
    let dir = temporaryFolder()
    for withCRC in [false, true] {
      let m = member(headerCRC: withCRC)
      let path = writeFile(dir + "/h\(withCRC).gz", m + m)
      #expect(try decodeAll(path).get() == sample + sample)
    }
  }

  @Test func aWrongHeaderCRCIsCorrupt() throws {
    let path = writeFile(temporaryFolder() + "/bad.gz", member(headerCRC: true, breakCRC: true))
    guard case .failure(.corrupt) = decodeAll(path) else {
      Issue.record("a wrong header CRC was not reported as corrupt")
      return
    }
  }

  @Test func aHeaderCutShortIsTruncated() throws {
    let m = member(headerCRC: true)
    let dir = temporaryFolder()
    // Every cut inside the header (after the magic bytes).
    for cut in 2..<40 {
      guard case .failure(.truncated) = decodeAll(writeFile(dir + "/t\(cut).gz", Array(m[0..<cut])))
      else {
        Issue.record("a header cut at \(cut) was not reported as truncated")
        return
      }
    }
  }

  @Test func theReportNamesTheCodecsThatRan() throws {
    let gzip6 = try makePolicy { $0.level = 6 }
    let gzip1 = try makePolicy { $0.level = 1 }
    let none = try makePolicy { $0.compression = "none" }
    // A build with zstd names libzstd, which also reads zstd inputs.
    let zstd = Codecs.zstdVersion.map { "; zstd: libzstd \($0)" } ?? ""
    #expect(
      Codecs.description(none)
        == "inflate: \(Codecs.hasISAL ? "isa-l" : "zlib \(zlibVersionString)")" + zstd)
    let level1 = Codecs.description(gzip1)
    let level6 = Codecs.description(gzip6)
    #expect(level1.hasSuffix((Codecs.hasISAL ? "deflate: isa-l level 1" : "level 1") + zstd))
    #expect(
      level6.hasSuffix(
        (Codecs.hasLibdeflate
          ? "deflate: libdeflate level 6" : "deflate: consentgate level 6") + zstd))
    if Codecs.hasZstd {
      let zstd3 = try makePolicy { $0.compression = "zstd" }
      #expect(Codecs.description(zstd3).hasSuffix("\(zstd) level 3"))
    }
  }
}

@Suite struct GzipWritingTests {
  @Test(arguments: [1, 6, 9])
  func roundTripAtLevel(_ level: Int) throws {
    let dir = temporaryFolder()
    var data: [UInt8] = []
    var rng = SplitMix64(seed: UInt64(level))
    for _ in 0..<50_000 { data.append(UInt8(truncatingIfNeeded: rng.next() % 40 + 40)) }
    let m = gzipMember(data, level: level)
    let path = writeFile(dir + "/r.gz", m)
    #expect(try decodeAll(path).get() == data)
    #expect(shell("gzip -t \(path)").status == 0)
    #expect(m == gzipMember(data, level: level))
    // mtime 0, no file name flag.
    #expect(Array(m[3..<8]) == [0, 0, 0, 0, 0])
  }

  @Test func emptyMemberIsValidGzip() throws {
    let dir = temporaryFolder()
    let path = writeFile(dir + "/e.gz", gzipMember([]))
    #expect(shell("gzip -t \(path)").status == 0)
    #expect(try decodeAll(path).get() == [])
  }
}
