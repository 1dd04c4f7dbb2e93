/// `lineage/NAME` (SPEC §11): one line per distinct user among `kept/NAME`'s records,
/// `{"user_id":"…","records":N}`, sorted by the id's UTF-8 bytes, compressed as the kept
/// file is. `affected` answers from these files without reading a kept record.
///
/// Gzip lineage is written as small members (about ``indexedChunkBytes`` of lines each),
/// each with a gzip extra field (RFC 1952 FEXTRA) `CG` holding the member's size in bytes
/// (u32, little-endian), the length (u16) and bytes of its first line's canonical id, and a
/// 24-bit fingerprint of each of its ids (``fingerprint(_:)``, 3 bytes little-endian,
/// ascending). Any gzip reader reads the file as one stream; `affected` walks the headers
/// and inflates only the members whose id range holds a queried user whose fingerprint is
/// there (``IndexedLineage``): the ranges alone would not do, since 10,000 ids spread over
/// a file's whole id space fall into nearly every member's range.
enum LineageFile {
  /// Lines per gzip member, in bytes of text: small enough that a hit inflates little,
  /// large enough that the member overhead stays a few percent.
  static let indexedChunkBytes = 4096

  /// Writes the lines for `users` (canonical id bytes → kept records) to `file`, in frames
  /// of about 1 MiB for compressed output; an empty compressed file is one empty frame.
  static func write(_ users: [[UInt8]: Int], to file: OutputFile, policy: Policy)
    throws(OutputError)
  {
    if policy.compression == .gzip {
      try writeIndexed(users, to: file, writer: GzipMemberWriter(level: policy.level))
      return
    }
    let compressor = makeBlockCompressor(policy.compression, level: policy.level)
    var plain: [UInt8] = []
    var frame: [UInt8] = []
    func flush() throws(OutputError) {
      if let compressor {
        frame.removeAll(keepingCapacity: true)
        compressor.compress(plain, appendingTo: &frame)
        try file.write(frame)
      } else {
        try file.write(plain)
      }
      plain.removeAll(keepingCapacity: true)
    }
    let ids = users.keys.sorted { $0.lexicographicallyPrecedes($1) }
    for id in ids {
      appendLine(id: id, records: users[id]!, to: &plain)
      if plain.count >= 1 << 20 { try flush() }
    }
    if !plain.isEmpty || (compressor != nil && file.bytesWritten == 0) { try flush() }
    file.records = ids.count
  }

  /// Gzip lineage: members of about ``indexedChunkBytes`` of lines, each headed by its size
  /// and first id (see the type's comment), written out about 1 MiB at a time.
  static func writeIndexed(_ users: [[UInt8]: Int], to file: OutputFile, writer: GzipMemberWriter)
    throws(OutputError)
  {
    let ids = users.keys.sorted { $0.lexicographicallyPrecedes($1) }
    var plain: [UInt8] = []
    var member: [UInt8] = []
    var out: [UInt8] = []
    var first: [UInt8]?
    var prints: [UInt32] = []
    func emit() {
      member.removeAll(keepingCapacity: true)
      writer.compress(plain, appendingTo: &member)
      prints.sort()
      appendIndexed(member, firstId: first, fingerprints: prints, to: &out)
      plain.removeAll(keepingCapacity: true)
      prints.removeAll(keepingCapacity: true)
      first = nil
    }
    for id in ids {
      if first == nil { first = id }
      prints.append(fingerprint(id))
      appendLine(id: id, records: users[id]!, to: &plain)
      if plain.count >= indexedChunkBytes { emit() }
      if out.count >= 1 << 20 {
        try file.write(out)
        out.removeAll(keepingCapacity: true)
      }
    }
    // An empty file is one empty member, as for kept files.
    if !plain.isEmpty || (out.isEmpty && file.bytesWritten == 0) { emit() }
    try file.write(out)
    file.records = ids.count
  }

  /// The subfield id of the index entry in a lineage member's extra field.
  static let subfieldID: (UInt8, UInt8) = (UInt8(ascii: "C"), UInt8(ascii: "G"))

  /// A user id's 24-bit fingerprint in a member's index: the top bits of the hash the
  /// consent tables use, the same on every platform.
  @inline(__always)
  static func fingerprint<C: Collection>(_ id: C) -> UInt32 where C.Element == UInt8 {
    let h = Array(id).withUnsafeBytes { ConsentIndex.hash($0) }
    return UInt32(truncatingIfNeeded: h >> 40)
  }

  /// Appends `member` (a gzip member whose header sets no flag) with an extra field `CG`:
  /// its new size (u32), `firstId` (u16 length and bytes) and the sorted `fingerprints`
  /// (3 bytes each). A member whose index does not fit an extra field (or without a first
  /// line) is appended as it is: `affected` then inflates it.
  static func appendIndexed(
    _ member: [UInt8], firstId: [UInt8]?, fingerprints: [UInt32], to out: inout [UInt8]
  ) {
    precondition(member.count >= 18 && member[3] == 0, "a gzip member without header flags")
    let payload = 4 + 2 + (firstId?.count ?? 0) + 3 * fingerprints.count
    guard let firstId, payload + 4 <= 65_535 else {
      out += member
      return
    }
    let total = member.count + 2 + 4 + payload
    guard total <= Int(UInt32.max) else {
      out += member
      return
    }
    out += member[0..<3]
    out.append(0x04)  // FEXTRA
    out += member[4..<10]
    withUnsafeBytes(of: UInt16(4 + payload).littleEndian) { out += $0 }
    out += [subfieldID.0, subfieldID.1]
    withUnsafeBytes(of: UInt16(payload).littleEndian) { out += $0 }
    withUnsafeBytes(of: UInt32(total).littleEndian) { out += $0 }
    withUnsafeBytes(of: UInt16(firstId.count).littleEndian) { out += $0 }
    out += firstId
    for f in fingerprints {
      out += [
        UInt8(truncatingIfNeeded: f), UInt8(truncatingIfNeeded: f >> 8),
        UInt8(truncatingIfNeeded: f >> 16),
      ]
    }
    out += member[10...]
  }

  /// `{"user_id":"ID","records":N}` and LF: only `"`, `\` and U+0000–U+001F escaped (as
  /// `\"`, `\\`, `\u00xx` in lowercase hex), every other byte as it is, so the bytes are the
  /// same wherever they are made.
  static func appendLine(id: [UInt8], records: Int, to out: inout [UInt8]) {
    out += #"{"user_id":""#.utf8
    let hex = Array("0123456789abcdef".utf8)
    for b in id {
      switch b {
      case UInt8(ascii: "\""): out += #"\""#.utf8
      case UInt8(ascii: "\\"): out += #"\\"#.utf8
      case 0..<0x20: out += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]]
      default: out.append(b)
      }
    }
    out += #"","records":"#.utf8
    out += String(records).utf8
    out += "}\n".utf8
  }
}
