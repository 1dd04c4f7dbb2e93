import CZlib
import Foundation

/// The on-disk layout of a consent index (SPEC §9), shared by ``IndexBuilder`` and
/// ``MappedIndex``. The README's "Consent index" section has the same table with the reasons.
///
/// | bytes | what |
/// |---|---|
/// | 0–63 | prelude: magic `CGINDEX\0`, format (u32), 0 (u32), header offset and length (u64), header CRC-32, prelude CRC-32 of bytes 0–35 |
/// | entries | per user, back to back: deciding time (u64, ``PackedTime``), flags (u8), tag set (u24), with flag ``childBit`` the grant's ``ChildFacts`` word (u32), id (u64 for a digit-only id without a leading zero; else a length byte — 255: a u32 follows — and the bytes) |
/// | slots | u64 words, linear probing without wrap-around: 24-bit hash tag << 40 \| (entry offset + 1); 0 is empty |
/// | tag_sets | one line per distinct set of tag signals: canonical codes joined by `,`, `!` for an invalid one |
/// | exact_times | one line per deciding time that does not pack: `seconds fraction subfraction extra-digits` |
/// | block_crcs | u32 CRC-32 of every 1 MiB block of `entries`, then of `slots`: `explain` checks only the blocks it reads |
/// | header | JSON: format, tool, policy fields, sources, users, capacity, sections with offsets, lengths and CRC-32s |
///
/// All integers are little-endian.
enum IndexFile {
  static let magic: [UInt8] = Array("CGINDEX\0".utf8)
  static let format = 1
  static let preludeBytes = 64
  static let sectionNames = ["entries", "slots", "tag_sets", "exact_times", "block_crcs"]
  /// The unit of `block_crcs`.
  static let blockBytes = 1 << 20

  static func blocks(_ bytes: Int) -> Int { (bytes + blockBytes - 1) / blockBytes }

  // Entry fields, by byte offset.
  static let timeAt = 0
  static let flagsAt = 8
  static let idAt = 12
  /// Where the id starts in an entry with these flags: after the child word if it has one.
  @inline(__always)
  static func idAt(_ flags: UInt8) -> Int { flags & childBit != 0 ? 16 : 12 }

  // Flag bits.
  static let stateMask: UInt8 = 0x07
  static let ledgerErrorBit: UInt8 = 0x08
  static let numericIdBit: UInt8 = 0x10
  /// The deciding grant gave a birth date or parental consent (SPEC §13.2): its
  /// ``ChildFacts`` word (u32) sits between the tag set and the id.
  static let childBit: UInt8 = 0x20
  static let decidedBit: UInt8 = 0x80

  static let tagShift: UInt64 = 40
  static let offsetMask: UInt64 = (1 << 40) - 1

  /// Slots per user: a load factor of 0.8, so an unknown id meets an empty slot within a few
  /// words.
  static func capacity(users: Int) -> Int { max(8, users + users / 4 + 1) }

  /// Where an id's probe starts: its hash scaled onto the capacity. Monotone in the hash, so
  /// that users sorted by hash fill the table front to back (``IndexBuilder``).
  @inline(__always)
  static func home(_ h: UInt64, capacity: Int) -> Int {
    Int(truncatingIfNeeded: h.multipliedFullWidth(by: UInt64(capacity)).high)
  }

  @inline(__always)
  static func tag(_ h: UInt64) -> UInt64 { (h & 0xFF_FFFF) << tagShift }

  /// The value of a digit-only id without a leading zero that fits in 64 bits: such an id is
  /// stored as this number.
  @inline(__always)
  static func numericValue(_ id: UnsafeRawBufferPointer) -> UInt64? {
    guard id.count >= 1, id.count <= 20, id[0] != UInt8(ascii: "0") || id.count == 1 else {
      return nil
    }
    var v: UInt64 = 0
    for c in id {
      guard c >= 0x30 && c <= 0x39 else { return nil }
      let (m, o1) = v.multipliedReportingOverflow(by: 10)
      let (s, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
      if o1 || o2 { return nil }
      v = s
    }
    return v
  }

  /// The CRC-32 of `a` then `b`, from their CRC-32s (zlib's `crc32_combine`).
  static func combine(_ a: UInt32, _ b: UInt32, length: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: CZlib.crc32_combine(UInt(a), UInt(b), off_t(length)))
  }

  static func crc32(_ bytes: UnsafeRawBufferPointer, _ crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
    return UInt32(
      CZlib.crc32_z(
        UInt(crc), base.assumingMemoryBound(to: UInt8.self), Int(bytes.count)))
  }

  /// An exact time as a line of `exact_times`.
  static func exactLine(_ t: Timestamp) -> String {
    let extra = t.extraDigits.map { String(decoding: $0, as: UTF8.self) } ?? "-"
    return "\(t.seconds) \(t.fraction) \(t.subFraction) \(extra)"
  }

  static func parseExactLine(_ line: Substring) -> Timestamp? {
    let parts = line.split(separator: " ", omittingEmptySubsequences: false)
    guard parts.count == 4, let s = Int64(parts[0]), let f = UInt64(parts[1]),
      let sf = UInt64(parts[2])
    else { return nil }
    let extra: [UInt8]? = parts[3] == "-" ? nil : Array(parts[3].utf8)
    guard extra?.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ?? true else { return nil }
    return Timestamp(seconds: s, fraction: f, subFraction: sf, extraDigits: extra)
  }
}

/// An index file that cannot be used: exit 2, naming the file and the section.
public struct IndexError: Error, Sendable, CustomStringConvertible {
  public var path: String
  public var section: String
  public var detail: String

  public var description: String { "\(path): index section \(section): \(detail)" }
}

/// The policy fields an index is built for (SPEC §9): a run must agree with every one.
public struct IndexPolicy: Sendable, Equatable {
  public var purpose: String
  public var cutoff: Timestamp
  public var maxConsentAgeDays: Int64?
  public var noticeVersions: [String]?
  public var lenientLedger: Bool
  public var children: ChildrenRule
  public var unknownAge: UnknownAgeRule

  public init(_ policy: Policy) {
    purpose = policy.purpose
    cutoff = policy.cutoff
    maxConsentAgeDays = policy.maxConsentAgeDays
    noticeVersions = policy.noticeVersions
    lenientLedger = policy.lenientLedger
    children = policy.children
    unknownAge = policy.unknownAge
  }

  var json: JSONValue {
    .object([
      ("purpose", .string(purpose)),
      ("cutoff", .string(cutoff.rfc3339)),
      ("max_consent_age", maxConsentAgeDays.map { .int($0) } ?? .null),
      ("notice_versions", noticeVersions.map { .array($0.map(JSONValue.string)) } ?? .null),
      ("lenient_ledger", .bool(lenientLedger)),
      ("children", .string(children.rawValue)),
      ("unknown_age", .string(unknownAge.rawValue)),
    ])
  }

  /// The first field where `policy` differs from this, compared as values: instants as
  /// instants, notice versions as sets.
  public func mismatch(with policy: Policy) -> String? {
    if policy.purpose != purpose { return "purpose" }
    if policy.cutoff != cutoff { return "cutoff" }
    if policy.maxConsentAgeDays != maxConsentAgeDays { return "max_consent_age" }
    if policy.noticeVersions.map(Set.init) != noticeVersions.map(Set.init) {
      return "notice_versions"
    }
    if policy.lenientLedger != lenientLedger { return "lenient_ledger" }
    if policy.children != children { return "children" }
    if policy.unknownAge != unknownAge { return "unknown_age" }
    return nil
  }
}

/// One section's place in the file.
struct IndexSection: Sendable, Equatable {
  var name: String
  var offset: Int
  var bytes: Int
  var crc32: UInt32
}

/// The header of an index file: what it was built from and where its sections are.
public struct IndexHeader: Sendable {
  public var format: Int
  public var toolVersion: String
  public var builtAt: String
  public var policy: IndexPolicy
  public var consentFiles: [SideFileSummary]
  public var jurisdictionFiles: [SideFileSummary]
  /// Distinct ids in ledger and tags together.
  public var users: Int
  var capacity: Int
  var sections: [IndexSection]

  public var json: JSONValue {
    .object([
      ("format", .int(Int64(format))),
      (
        "tool",
        .object([
          ("name", .string(FilterReport.toolName)), ("version", .string(toolVersion)),
        ])
      ),
      ("built_at", .string(builtAt)),
      ("policy", policy.json),
      ("consent", .array(consentFiles.map(\.json))),
      ("jurisdictions", .array(jurisdictionFiles.map(\.json))),
      ("users", .int(Int64(users))),
      ("capacity", .int(Int64(capacity))),
      (
        "sections",
        .array(
          sections.map {
            .object([
              ("name", .string($0.name)), ("offset", .int(Int64($0.offset))),
              ("bytes", .int(Int64($0.bytes))), ("crc32", .int(Int64($0.crc32))),
            ])
          })
      ),
    ])
  }

  /// The header for people (`index info`, `index verify`).
  public var text: String {
    var lines = [
      "consent index, format \(format), built by consentgate \(toolVersion) at \(builtAt)",
      "users: \(users)",
      "purpose: \(policy.purpose)",
      "cutoff: \(policy.cutoff.rfc3339)",
      "max_consent_age: \(policy.maxConsentAgeDays.map(String.init) ?? "none")",
      "notice_versions: \(policy.noticeVersions?.joined(separator: ",") ?? "any")",
      "lenient_ledger: \(policy.lenientLedger)",
      "children: \(policy.children.rawValue), unknown_age: \(policy.unknownAge.rawValue)",
    ]
    for (role, files) in [("consent", consentFiles), ("jurisdictions", jurisdictionFiles)] {
      for f in files {
        lines.append("\(role): \(f.path)  sha256 \(f.sha256)  rows \(f.rows)  users \(f.users)")
      }
    }
    for s in sections {
      lines.append("section \(s.name): offset \(s.offset), \(s.bytes) bytes, crc32 \(s.crc32)")
    }
    return lines.joined(separator: "\n")
  }

  /// Reads a header back; nil when a field is missing or of the wrong type.
  static func parse(_ v: JSONValue) -> IndexHeader? {
    func int(_ v: JSONValue?) -> Int? {
      if case .int(let i)? = v { return Int(exactly: i) }
      return nil
    }
    func string(_ v: JSONValue?) -> String? {
      if case .string(let s)? = v { return s }
      return nil
    }
    func files(_ v: JSONValue?) -> [SideFileSummary]? {
      guard case .array(let items)? = v else { return nil }
      var out: [SideFileSummary] = []
      for item in items {
        guard let path = string(item["path"]), let sha = string(item["sha256"]),
          let rows = int(item["rows"]), let users = int(item["users"])
        else { return nil }
        out.append(SideFileSummary(path: path, sha256: sha, rows: rows, users: users))
      }
      return out
    }
    guard let format = int(v["format"]), let tool = string(v["tool"]?["version"]),
      let builtAt = string(v["built_at"]), let p = v["policy"],
      let purpose = string(p["purpose"]), let cutoffText = string(p["cutoff"]),
      let cutoff = Timestamp.parseRFC3339(cutoffText),
      case .bool(let lenient)? = p["lenient_ledger"],
      let children = string(p["children"]).flatMap(ChildrenRule.init(rawValue:)),
      let unknownAge = string(p["unknown_age"]).flatMap(UnknownAgeRule.init(rawValue:)),
      let consent = files(v["consent"]), let tags = files(v["jurisdictions"]),
      let users = int(v["users"]), let capacity = int(v["capacity"]),
      case .array(let sectionItems)? = v["sections"]
    else { return nil }
    var maxAge: Int64?
    switch p["max_consent_age"] {
    case .int(let i)?: maxAge = i
    case .null?: maxAge = nil
    default: return nil
    }
    var notices: [String]?
    switch p["notice_versions"] {
    case .array(let items)?:
      var list: [String] = []
      for item in items {
        guard case .string(let s) = item else { return nil }
        list.append(s)
      }
      notices = list
    case .null?: notices = nil
    default: return nil
    }
    var sections: [IndexSection] = []
    for item in sectionItems {
      guard let name = string(item["name"]), let offset = int(item["offset"]),
        let bytes = int(item["bytes"]), let crc = int(item["crc32"]),
        let crc32 = UInt32(exactly: crc)
      else { return nil }
      sections.append(IndexSection(name: name, offset: offset, bytes: bytes, crc32: crc32))
    }
    var policy = IndexPolicy(Policy(cutoff: cutoff))
    policy.purpose = purpose
    policy.maxConsentAgeDays = maxAge
    policy.noticeVersions = notices
    policy.lenientLedger = lenient
    policy.children = children
    policy.unknownAge = unknownAge
    return IndexHeader(
      format: format, toolVersion: tool, builtAt: builtAt, policy: policy,
      consentFiles: consent, jurisdictionFiles: tags, users: users, capacity: capacity,
      sections: sections)
  }
}
