// Over 300 lines on purpose: one type, the mapped file, whose opening checks, verification,
// explain's block checks and the probe all read the same private section pointers; split,
// those would have to be widened beyond this type.
import CScanKernels
import Crypto
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A consent index file mapped read-only (SPEC §9): every run and every worker on a machine
/// shares its pages through the page cache.
///
/// Opening checks the prelude, the header's CRC and the sections' bounds, and reads the two
/// small sections (tag sets, exact times) after checking their CRCs. The large sections
/// are checked by ``verify()``, which every run calls before it writes anything.
///
/// Immutable after `init` and only read through the mapping, so it is shared between threads
/// as it is (`@unchecked Sendable` for the raw pointer).
public final class MappedIndex: @unchecked Sendable {
  public let path: String
  public let header: IndexHeader
  private let map: UnsafeMutableRawPointer
  private let size: Int
  private let entries: UnsafeRawBufferPointer
  private let slots: UnsafeBufferPointer<UInt64>
  private let capacity: Int
  /// Each tag set's canonical signal texts (set 0 is empty).
  let tagSets: [[String]]
  let exactTimes: [Timestamp]
  /// The CRC-32 of each 1 MiB block of `entries`, then of `slots`.
  private let blockCRCs: [UInt32]

  /// Reads the prelude and header only (`index info`): no section is touched.
  public static func readHeader(path: String) throws(IndexError) -> IndexHeader {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    var prelude = [UInt8](repeating: 0, count: IndexFile.preludeBytes)
    let n = prelude.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    let (offset, length) = try checkPrelude(prelude, count: n, fileSize: size, path: path)
    var headerBytes = [UInt8](repeating: 0, count: length)
    let got = headerBytes.withUnsafeMutableBytes {
      pread(fd, $0.baseAddress, length, off_t(offset))
    }
    guard got == length else {
      throw IndexError(path: path, section: "header", detail: "truncated")
    }
    return try parseHeader(headerBytes, prelude: prelude, fileSize: size, path: path)
  }

  /// `path` opened for reading, with its size: a regular file, or an error naming it.
  private static func openRegularFile(_ path: String) throws(IndexError) -> (Int32, Int) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw IndexError(path: path, section: "file", detail: InputSource.errnoText())
    }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw IndexError(path: path, section: "file", detail: "not a regular file")
    }
    return (fd, Int(info.st_size))
  }

  /// The header's offset and length, after checking magic, format and the prelude's CRC.
  private static func checkPrelude(
    _ prelude: [UInt8], count: Int, fileSize: Int, path: String
  ) throws(IndexError) -> (Int, Int) {
    guard count >= 8, Array(prelude[0..<8]) == IndexFile.magic else {
      throw IndexError(path: path, section: "prelude", detail: "not a consentgate index")
    }
    guard count == IndexFile.preludeBytes else {
      throw IndexError(path: path, section: "prelude", detail: "truncated")
    }
    let (crc, actual, format, offset, length) = prelude.withUnsafeBytes { p in
      (
        p.loadUnaligned(fromByteOffset: 36, as: UInt32.self),
        IndexFile.crc32(UnsafeRawBufferPointer(rebasing: p[0..<36])),
        Int(p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
        p.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
        p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
      )
    }
    guard crc == actual else {
      throw IndexError(path: path, section: "prelude", detail: "checksum mismatch")
    }
    guard format == IndexFile.format else {
      throw IndexError(
        path: path, section: "prelude",
        detail: "format \(format); this consentgate reads format \(IndexFile.format)")
    }
    guard offset >= UInt64(IndexFile.preludeBytes), length <= UInt64(fileSize),
      offset <= UInt64(fileSize) - length
    else {
      throw IndexError(path: path, section: "header", detail: "truncated")
    }
    return (Int(offset), Int(length))
  }

  private static func parseHeader(
    _ bytes: [UInt8], prelude: [UInt8], fileSize: Int, path: String
  ) throws(IndexError) -> IndexHeader {
    let crc = prelude.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt32.self) }
    guard bytes.withUnsafeBytes({ IndexFile.crc32($0) }) == crc else {
      throw IndexError(path: path, section: "header", detail: "checksum mismatch")
    }
    guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)),
      let header = IndexHeader.parse(value)
    else {
      throw IndexError(path: path, section: "header", detail: "unreadable")
    }
    guard header.format == IndexFile.format,
      header.sections.map(\.name) == IndexFile.sectionNames
    else {
      throw IndexError(path: path, section: "header", detail: "unexpected sections")
    }
    for s in header.sections {
      guard s.offset >= IndexFile.preludeBytes, s.bytes >= 0, s.offset <= fileSize - s.bytes
      else {
        throw IndexError(path: path, section: s.name, detail: "truncated")
      }
    }
    let slots = header.sections[1]
    guard slots.offset % 8 == 0, slots.bytes % 8 == 0, slots.bytes / 8 >= header.capacity,
      header.capacity >= 1, header.sections[0].bytes <= Int(IndexFile.offsetMask)
    else {
      throw IndexError(path: path, section: "slots", detail: "inconsistent with the header")
    }
    return header
  }

  /// Maps `path` and checks everything but the two large sections' CRCs.
  public init(path: String) throws(IndexError) {
    self.path = path
    let (fd, fileSize) = try MappedIndex.openRegularFile(path)
    defer { close(fd) }
    size = fileSize
    guard size >= 8 else {
      throw IndexError(path: path, section: "prelude", detail: "not a consentgate index")
    }
    guard let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else {
      throw IndexError(path: path, section: "file", detail: InputSource.errnoText())
    }
    map = m
    let file = UnsafeRawBufferPointer(start: m, count: size)
    do throws(IndexError) {
      let prelude = Array(file.prefix(IndexFile.preludeBytes))
      let (offset, length) = try MappedIndex.checkPrelude(
        prelude, count: prelude.count, fileSize: size, path: path)
      let h = try MappedIndex.parseHeader(
        Array(file[offset..<(offset + length)]), prelude: prelude, fileSize: size, path: path)
      header = h
      func bytes(_ k: Int) -> UnsafeRawBufferPointer {
        let s = h.sections[k]
        return UnsafeRawBufferPointer(rebasing: file[s.offset..<(s.offset + s.bytes)])
      }
      entries = bytes(0)
      slots = bytes(1).bindMemory(to: UInt64.self)
      capacity = h.capacity
      var texts: [String] = []
      for k in 2...4 {
        let b = bytes(k)
        guard IndexFile.crc32(b) == h.sections[k].crc32 else {
          throw IndexError(path: path, section: h.sections[k].name, detail: "checksum mismatch")
        }
        texts.append(String(decoding: b, as: UTF8.self))
      }
      let list = bytes(4)
      guard
        list.count
          == 4 * (IndexFile.blocks(h.sections[0].bytes) + IndexFile.blocks(h.sections[1].bytes))
      else {
        throw IndexError(path: path, section: "block_crcs", detail: "inconsistent with the header")
      }
      blockCRCs = (0..<(list.count / 4)).map {
        UInt32(littleEndian: list.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))
      }
      var sets: [[String]] = [[]]
      for line in texts[0].split(separator: "\n") {
        sets.append(line.split(separator: ",").map(String.init))
      }
      tagSets = sets
      var times: [Timestamp] = []
      for line in texts[1].split(separator: "\n") {
        guard let t = IndexFile.parseExactLine(line) else {
          throw IndexError(path: path, section: "exact_times", detail: "unreadable")
        }
        times.append(t)
      }
      exactTimes = times
    } catch {
      munmap(m, size)
      throw error
    }
  }

  deinit { munmap(map, size) }

  /// Checks the CRCs of the entries and slots, and returns the SHA-256 of the whole file
  /// (the report's `index.sha256`). Two threads: the hash over the file, the CRCs over the
  /// sections.
  public func verify() throws(IndexError) -> String {
    // Read-only memory for the life of this object: safe to read from both threads.
    nonisolated(unsafe) let file = UnsafeRawBufferPointer(start: map, count: size)
    let sections = header.sections
    nonisolated(unsafe) var digest = ""
    nonisolated(unsafe) var bad: String?
    // Pages read here are let go again (the page cache keeps them): a run's resident memory
    // then holds only the pages its lookups touch, not the whole file.
    @Sendable func release(_ range: Range<Int>) {
      #if os(Linux)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        _ = madvise(
          UnsafeMutableRawPointer(mutating: file.baseAddress! + start), range.upperBound - start,
          MADV_DONTNEED)
      #endif
    }
    DispatchQueue.concurrentPerform(iterations: 2) { k in
      let chunk = 4 << 20
      if k == 0 {
        var hasher = SHA256()
        var at = 0
        while at < file.count {
          let end = min(file.count, at + chunk)
          hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: file[at..<end]))
          release(at..<end)
          at = end
        }
        digest = hexString(hasher.finalize())
      } else {
        var first = 0
        for s in sections.prefix(2) {
          var whole: UInt32 = 0
          for b in 0..<IndexFile.blocks(s.bytes) {
            let start = s.offset + b * IndexFile.blockBytes
            let end = min(s.offset + s.bytes, start + IndexFile.blockBytes)
            let crc = IndexFile.crc32(UnsafeRawBufferPointer(rebasing: file[start..<end]))
            release(start..<end)
            guard crc == blockCRCs[first + b] else {
              bad = s.name
              return
            }
            whole = b == 0 ? crc : IndexFile.combine(whole, crc, length: end - start)
          }
          guard whole == s.crc32 else {
            bad = s.name
            return
          }
          first += IndexFile.blocks(s.bytes)
        }
      }
    }
    if let bad { throw IndexError(path: path, section: bad, detail: "checksum mismatch") }
    return digest
  }

  /// Checks the CRCs of the blocks a lookup of `id` reads (the probed slots and the candidate
  /// entries) and no others: what `explain` needs to answer in milliseconds, never from a
  /// damaged block.
  public func verifyBlocks(for id: UnsafeRawBufferPointer) throws(IndexError) {
    func check(_ k: Int, _ range: Range<Int>) throws(IndexError) {
      let s = header.sections[k]
      let first = k == 0 ? 0 : IndexFile.blocks(header.sections[0].bytes)
      let file = UnsafeRawBufferPointer(start: map, count: size)
      guard !range.isEmpty else { return }
      for b
        in (range.lowerBound / IndexFile.blockBytes)...((range.upperBound - 1)
        / IndexFile.blockBytes)
      where b < IndexFile.blocks(s.bytes) {
        let start = s.offset + b * IndexFile.blockBytes
        let end = min(s.offset + s.bytes, start + IndexFile.blockBytes)
        guard
          IndexFile.crc32(UnsafeRawBufferPointer(rebasing: file[start..<end]))
            == blockCRCs[first + b]
        else {
          throw IndexError(path: path, section: s.name, detail: "checksum mismatch")
        }
      }
    }
    let h = ConsentIndex.hash(id)
    let start = home(h)
    var end = start
    while end < slots.count && slots[end] != 0 { end += 1 }
    try check(1, (start * 8)..<(min(end + 1, slots.count) * 8))
    for slot in start..<end where slots[slot] & ~IndexFile.offsetMask == IndexFile.tag(h) {
      let e = Int(truncatingIfNeeded: (slots[slot] & IndexFile.offsetMask) - 1)
      guard e >= 0, e < entries.count else { continue }
      // The entry's own length is in its first bytes: checked with the first block.
      try check(0, e..<min(entries.count, e + IndexFile.idAt + 9))
      try check(0, e..<min(entries.count, e + entrySize(e)))
    }
  }

  /// The bytes entry `e` takes (bounded by the section).
  private func entrySize(_ e: Int) -> Int {
    let p = entries.baseAddress! + e
    guard e + IndexFile.idAt + 1 <= entries.count else { return entries.count - e }
    let flags = p.load(fromByteOffset: IndexFile.flagsAt, as: UInt8.self)
    let idAt = IndexFile.idAt(flags)
    if flags & IndexFile.numericIdBit != 0 { return idAt + 8 }
    guard e + idAt + 1 <= entries.count else { return entries.count - e }
    let length = Int(p.load(fromByteOffset: idAt, as: UInt8.self))
    guard length == 255 else { return idAt + 1 + length }
    guard e + idAt + 5 <= entries.count else { return entries.count - e }
    return idAt + 5 + Int(p.loadUnaligned(fromByteOffset: idAt + 1, as: UInt32.self))
  }

  /// The index's users with their tag signals resolved against `protection`: what a run
  /// looks up.
  public func lookup(protection: ProtectionSet) -> MappedLookup {
    // The age schedules are only read under `--children check`; an index built without it
    // holds no child words, so they are harmless there.
    let signals = tagSets.map { codes in
      var set = SignalSet()
      for code in codes {
        let signal = code == "!" ? .invalid : protection.classify(code)
        set.add(signal)
        if signal == .protected { set.ages |= protection.ageBit(code) }
      }
      return set
    }
    return MappedLookup(index: self, tagSignals: signals)
  }

  // MARK: Probing

  @inline(__always)
  func home(_ h: UInt64) -> Int { IndexFile.home(h, capacity: capacity) }

  @inline(__always)
  func prefetchSlot(_ slot: Int) {
    if slot < slots.count { cg_prefetch(slots.baseAddress! + slot) }
  }

  @inline(__always)
  func firstCandidate(_ h: UInt64, from start: Int) -> Int {
    let tag = IndexFile.tag(h)
    var slot = start
    while slot < slots.count {
      let word = slots[slot]
      if word == 0 { return slot }
      if word & ~IndexFile.offsetMask == tag {
        let e = Int(truncatingIfNeeded: (word & IndexFile.offsetMask) - 1)
        if e < entries.count { cg_prefetch(entries.baseAddress! + e) }
        return slot
      }
      slot += 1
    }
    return slot
  }

  @inline(__always)
  func probe(_ id: UnsafeRawBufferPointer, _ h: UInt64, from start: Int) -> Int? {
    let tag = IndexFile.tag(h)
    var slot = start
    while slot < slots.count {
      let word = slots[slot]
      if word == 0 { return nil }
      if word & ~IndexFile.offsetMask == tag {
        let e = Int(truncatingIfNeeded: (word & IndexFile.offsetMask) - 1)
        if idEquals(e, id) { return e }
      }
      slot += 1
    }
    return nil
  }

  /// Whether entry `e` holds `id`. Every read is checked against the section's end: a
  /// crafted file can make an id unknown, never read outside the map.
  @inline(__always)
  private func idEquals(_ e: Int, _ id: UnsafeRawBufferPointer) -> Bool {
    guard e >= 0, e + IndexFile.idAt + 1 <= entries.count else { return false }
    let p = entries.baseAddress! + e
    let flags = p.load(fromByteOffset: IndexFile.flagsAt, as: UInt8.self)
    let idAt = IndexFile.idAt(flags)
    if flags & IndexFile.numericIdBit != 0 {
      guard e + idAt + 8 <= entries.count, let v = IndexFile.numericValue(id) else {
        return false
      }
      return p.loadUnaligned(fromByteOffset: idAt, as: UInt64.self) == v
    }
    guard e + idAt + 1 <= entries.count else { return false }
    var length = Int(p.load(fromByteOffset: idAt, as: UInt8.self))
    var at = idAt + 1
    if length == 255 {
      guard e + at + 4 <= entries.count else { return false }
      length = Int(p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      at += 4
    }
    guard length == id.count, e + at + length <= entries.count else { return false }
    return length == 0 || bytesEqual(p + at, id.baseAddress!, count: length)
  }

  /// The flags, tag set and packed time of entry `e` (an offset a probe returned).
  @inline(__always)
  func entryFields(_ e: Int) -> (flags: UInt8, tagSet: Int, time: UInt64) {
    let p = entries.baseAddress! + e
    let word = p.loadUnaligned(fromByteOffset: IndexFile.flagsAt, as: UInt32.self)
    return (
      UInt8(truncatingIfNeeded: word), Int(word >> 8),
      p.loadUnaligned(fromByteOffset: IndexFile.timeAt, as: UInt64.self)
    )
  }

  /// The child word of entry `e` with `flags` (a probe matched its id, so the word is inside
  /// the section).
  @inline(__always)
  func childWord(_ e: Int, flags: UInt8) -> UInt32 {
    guard flags & IndexFile.childBit != 0 else { return 0 }
    return entries.baseAddress!.loadUnaligned(fromByteOffset: e + IndexFile.idAt, as: UInt32.self)
  }
}

/// A mapped index with its tag sets resolved for one run's protection set.
public struct MappedLookup: Sendable, ProbedTable {
  /// A mapped table of 100 M users misses the TLB as well as the cache on every probe: 32
  /// lookups in flight per stage gave 6.7-7.0 M/s against 6.1 with 8 (one core, half
  /// unknown).
  static let batchWidth = 32

  public let index: MappedIndex
  let tagSignals: [SignalSet]

  func home(_ h: UInt64) -> Int { index.home(h) }
  func prefetchSlot(_ slot: Int) { index.prefetchSlot(slot) }
  func firstCandidate(_ h: UInt64, from slot: Int) -> Int { index.firstCandidate(h, from: slot) }
  func probe(_ id: UnsafeRawBufferPointer, _ h: UInt64, from slot: Int) -> Int? {
    index.probe(id, h, from: slot)
  }

  @inline(__always)
  func facts(_ e: Int) -> UserFacts {
    let (flags, set, time) = index.entryFields(e)
    let decided = flags & IndexFile.decidedBit != 0
    return UserFacts(
      state: decided
        ? ConsentState(rawValue: flags & IndexFile.stateMask) ?? .objected : .noConsent,
      ledgerError: flags & IndexFile.ledgerErrorBit != 0,
      // A set number past the table is a crafted file: read as an invalid tag (quarantine).
      tags: set < tagSignals.count ? tagSignals[set] : MappedLookup.invalidTag,
      decidedWord: decided ? time : 0, child: ChildFacts(word: index.childWord(e, flags: flags)))
  }

  /// The canonical tag signals of entry `e`, `!` for an invalid one (for `explain`).
  func tagCodes(_ e: Int) -> [String] {
    let set = index.entryFields(e).tagSet
    return set < index.tagSets.count ? index.tagSets[set] : ["!"]
  }

  private static let invalidTag: SignalSet = {
    var s = SignalSet()
    s.add(.invalid)
    return s
  }()

  func decidedAt(_ facts: UserFacts) -> Timestamp? {
    guard facts.decidedWord != 0 else { return nil }
    if facts.decidedWord & PackedTime.exactBit != 0 {
      let k = PackedTime.exactPlace(facts.decidedWord)
      // Out of range only in a crafted file: the latest instant, so since-grant drops.
      return k < index.exactTimes.count ? index.exactTimes[k] : Timestamp(seconds: .max)
    }
    return PackedTime.unpack(facts.decidedWord)
  }
}
