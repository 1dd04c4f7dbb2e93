// Over 300 lines for now: the policy, its settings and usage errors, with each option
// written out several times. Issue 23 replaces that with one option table and splits the
// file; left whole until then so the code moves only once.
import Foundation

/// What to do with a record whose jurisdiction has no signal at all.
public enum UnknownJurisdictionRule: String, Sendable, CaseIterable {
  case quarantine, protect, allow
}

/// Where an objection (Art. 21) drops records.
public enum ObjectionScope: String, Sendable, CaseIterable {
  case everywhere
  case protectedOnly = "protected-only"
}

/// Which records a grant covers: all of the user's, or those made since the grant.
public enum ConsentCoverage: String, Sendable, CaseIterable {
  case all
  case sinceGrant = "since-grant"
}

/// What becomes of a record that carries another person who may not be kept (SPEC §13.1).
public enum ThirdPartyRule: String, Sendable, CaseIterable {
  case quarantine, drop
}

/// Whether grants are checked against the age of digital consent (SPEC §13.2).
public enum ChildrenRule: String, Sendable, CaseIterable {
  case off, check
}

/// How a grant without a birth date counts under `--children check` (SPEC §13.2).
public enum UnknownAgeRule: String, Sendable, CaseIterable {
  case child, adult
}

/// The compression of output files.
public enum OutputCompression: String, Sendable, CaseIterable {
  case gzip, none, zstd

  /// What output file names end with.
  public var suffix: String {
    switch self {
    case .gzip: ".gz"
    case .zstd: ".zst"
    case .none: ""
    }
  }

  /// `--level` when none is given, and the levels allowed.
  var defaultLevel: Int { self == .zstd ? 3 : 6 }
  var levels: ClosedRange<Int> { self == .zstd ? 1...19 : 1...9 }
}

/// Every option that affects decisions or output bytes (SPEC §4 `policy`). Its
/// ``canonicalJSON`` is what the report hashes.
public struct Policy: Sendable, Equatable {
  public var purpose = "ai_training"
  /// The instant consent is judged at.
  public var cutoff: Timestamp
  public var protection: ProtectionSet
  public var unknownJurisdiction = UnknownJurisdictionRule.quarantine
  public var objections = ObjectionScope.everywhere
  public var consentCovers = ConsentCoverage.all
  public var maxConsentAgeDays: Int64?
  public var noticeVersions: [String]?
  public var userIdPath: JSONPointer
  public var countryPaths: [JSONPointer] = []
  public var timePath: JSONPointer
  public var lenientLedger = false
  public var maxRecordBytes = 16 << 20
  public var maxQuarantineRatio: Double?
  public var compression = OutputCompression.gzip
  public var level = 6
  /// Write `lineage/NAME` beside each `kept/NAME`: its users and their kept records (§11).
  public var lineage = false
  /// SPEC §13 (issue 21, not built yet): only the values that leave every decision of §3 as it
  /// is are accepted (no embedded paths, `children` off); they are in the report's policy.
  public var embeddedUserPaths: [JSONPointer] = []
  public var thirdParty = ThirdPartyRule.quarantine
  public var children = ChildrenRule.off
  public var unknownAge = UnknownAgeRule.child

  /// A policy with every default, judged at `cutoff`.
  public init(cutoff: Timestamp) {
    self.cutoff = cutoff
    protection = try! ProtectionSet(items: ["eea"])
    userIdPath = try! JSONPointer("/user_id")
    timePath = try! JSONPointer("/created_at")
  }

  /// The resolved policy as an object, keys named as in a policy file.
  public var json: JSONValue {
    .object([
      ("purpose", .string(purpose)),
      ("cutoff", .string(cutoff.rfc3339)),
      ("protect", .array(protection.items.map(JSONValue.string))),
      ("unknown_jurisdiction", .string(unknownJurisdiction.rawValue)),
      ("objections", .string(objections.rawValue)),
      ("consent_covers", .string(consentCovers.rawValue)),
      ("max_consent_age", maxConsentAgeDays.map { .int($0) } ?? .null),
      ("notice_versions", noticeVersions.map { .array($0.map(JSONValue.string)) } ?? .null),
      ("user_id_path", .string(userIdPath.text)),
      ("country_path", .array(countryPaths.map { .string($0.text) })),
      ("time_path", .string(timePath.text)),
      ("lenient_ledger", .bool(lenientLedger)),
      ("max_record_bytes", .int(Int64(maxRecordBytes))),
      ("max_quarantine_ratio", maxQuarantineRatio.map { .double($0) } ?? .null),
      ("compression", .string(compression.rawValue)),
      ("level", .int(Int64(level))),
      ("lineage", .bool(lineage)),
      ("embedded_user_path", .array(embeddedUserPaths.map { .string($0.text) })),
      ("third_party", .string(thirdParty.rawValue)),
      ("children", .string(children.rawValue)),
      ("unknown_age", .string(unknownAge.rawValue)),
    ])
  }

  /// Canonical JSON (keys sorted, no spaces): the bytes `policy_sha256` is taken of.
  public var canonicalJSON: String { json.canonical }
}

/// A usage error (exit 64): a bad option value or policy file. Never holds record content.
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Options as given, before defaults: one value from the policy file, one from the command
/// line. ``resolve(over:policyFolder:)`` merges them, the command line winning.
public struct PolicySettings: Sendable, Equatable {
  public var out: String?
  public var consent: [String]?
  public var jurisdictions: [String]?
  public var index: String?
  public var purpose: String?
  public var cutoff: String?
  public var protect: [String]?
  public var unknownJurisdiction: String?
  public var objections: String?
  public var consentCovers: String?
  public var maxConsentAge: Int64?
  public var noticeVersions: [String]?
  public var userIdPath: String?
  public var countryPath: [String]?
  public var timePath: String?
  public var lenientLedger: Bool?
  public var maxRecordBytes: Int64?
  public var maxQuarantineRatio: Double?
  public var compression: String?
  public var level: Int64?
  public var threads: Int64?
  public var quiet: Bool?
  public var resume: Bool?
  public var lineage: Bool?
  public var embeddedUserPath: [String]?
  public var thirdParty: String?
  public var children: String?
  public var unknownAge: String?

  public init() {}

  /// A list given as one string (on the command line, or as a JSON string in a policy
  /// file): its items are the text between commas. An array's elements are never split.
  public static func splitList(_ text: String) -> [String] {
    text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
  }

  /// The keys a policy file may hold: the long options, `_` for `-`.
  public static let fileKeys: Set<String> = [
    "out", "consent", "jurisdictions", "index", "purpose", "cutoff", "protect",
    "unknown_jurisdiction",
    "objections", "consent_covers", "max_consent_age", "notice_versions", "user_id_path",
    "country_path", "time_path", "lenient_ledger", "max_record_bytes", "max_quarantine_ratio",
    "compression", "level", "threads", "quiet", "resume", "lineage", "embedded_user_path",
    "third_party", "children", "unknown_age",
  ]

  /// Reads a policy file. Paths in it are made relative to the file's folder.
  public static func load(policyFile path: String) throws(UsageError) -> PolicySettings {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw UsageError("cannot read policy file \(path)")
    }
    let value: JSONValue
    do {
      value = try JSONDecoder().decode(JSONValue.self, from: data)
    } catch {
      throw UsageError("policy file \(path) is not valid JSON")
    }
    return try parse(
      value, from: "policy file \(path)", folder: (path as NSString).deletingLastPathComponent)
  }

  /// The settings a policy object gives (a policy file's, or a report's `policy`); `origin`
  /// names it in errors, and relative paths in it are relative to `folder`.
  public static func parse(_ value: JSONValue, from origin: String, folder: String = "")
    throws(UsageError) -> PolicySettings
  {
    let path = origin
    guard case .object(let members) = value else {
      throw UsageError("\(origin) must hold a JSON object")
    }
    func relative(_ p: String) -> String {
      p.hasPrefix("/") || folder.isEmpty ? p : folder + "/" + p
    }
    var s = PolicySettings()
    for (key, v) in members {
      guard fileKeys.contains(key) else {
        throw UsageError("\(path): unknown key \"\(key)\"")
      }
      func string() throws(UsageError) -> String {
        guard case .string(let t) = v else {
          throw UsageError("\(path): \"\(key)\" must be a string")
        }
        return t
      }
      func list() throws(UsageError) -> [String] {
        switch v {
        case .string(let t): return splitList(t)
        case .array(let items):
          var out: [String] = []
          for item in items {
            guard case .string(let t) = item else {
              throw UsageError("\(path): \"\(key)\" must hold strings")
            }
            out.append(t)
          }
          return out
        default: throw UsageError("\(path): \"\(key)\" must be a list of strings")
        }
      }
      func paths() throws(UsageError) -> [String] {
        switch v {
        case .string(let t): return [relative(t)]
        default: return try list().map(relative)
        }
      }
      func integer() throws(UsageError) -> Int64 {
        switch v {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: throw UsageError("\(path): \"\(key)\" must be an integer")
        }
      }
      func boolean() throws(UsageError) -> Bool {
        guard case .bool(let b) = v else {
          throw UsageError("\(path): \"\(key)\" must be true or false")
        }
        return b
      }
      switch key {
      case "out": s.out = relative(try string())
      case "consent": s.consent = try paths()
      case "jurisdictions": s.jurisdictions = try paths()
      case "index": s.index = relative(try string())
      case "purpose": s.purpose = try string()
      case "cutoff": s.cutoff = try string()
      case "protect": s.protect = try list()
      case "unknown_jurisdiction": s.unknownJurisdiction = try string()
      case "objections": s.objections = try string()
      case "consent_covers": s.consentCovers = try string()
      case "max_consent_age": s.maxConsentAge = v == .null ? nil : try integer()
      case "notice_versions": s.noticeVersions = v == .null ? nil : try list()
      case "user_id_path": s.userIdPath = try string()
      case "country_path": s.countryPath = try list()
      case "time_path": s.timePath = try string()
      case "lenient_ledger": s.lenientLedger = try boolean()
      case "max_record_bytes": s.maxRecordBytes = try integer()
      case "max_quarantine_ratio":
        switch v {
        case .null: s.maxQuarantineRatio = nil
        case .int(let i): s.maxQuarantineRatio = Double(i)
        case .double(let d): s.maxQuarantineRatio = d
        default: throw UsageError("\(path): \"\(key)\" must be a number")
        }
      case "compression": s.compression = try string()
      case "level": s.level = try integer()
      case "threads": s.threads = try integer()
      case "quiet": s.quiet = try boolean()
      case "resume": s.resume = try boolean()
      case "lineage": s.lineage = try boolean()
      case "embedded_user_path": s.embeddedUserPath = try list()
      case "third_party": s.thirdParty = try string()
      case "children": s.children = try string()
      case "unknown_age": s.unknownAge = try string()
      default: break
      }
    }
    return s
  }

  /// These settings laid over `base` (a policy file's): a value given here wins, a list given
  /// here replaces the base's list.
  public func overriding(_ base: PolicySettings) -> PolicySettings {
    var m = base
    if let v = out { m.out = v }
    if let v = consent { m.consent = v }
    if let v = jurisdictions { m.jurisdictions = v }
    if let v = index { m.index = v }
    if let v = purpose { m.purpose = v }
    if let v = cutoff { m.cutoff = v }
    if let v = protect { m.protect = v }
    if let v = unknownJurisdiction { m.unknownJurisdiction = v }
    if let v = objections { m.objections = v }
    if let v = consentCovers { m.consentCovers = v }
    if let v = maxConsentAge { m.maxConsentAge = v }
    if let v = noticeVersions { m.noticeVersions = v }
    if let v = userIdPath { m.userIdPath = v }
    if let v = countryPath { m.countryPath = v }
    if let v = timePath { m.timePath = v }
    if let v = lenientLedger { m.lenientLedger = v }
    if let v = maxRecordBytes { m.maxRecordBytes = v }
    if let v = maxQuarantineRatio { m.maxQuarantineRatio = v }
    if let v = compression { m.compression = v }
    if let v = level { m.level = v }
    if let v = threads { m.threads = v }
    if let v = quiet { m.quiet = v }
    if let v = resume { m.resume = v }
    if let v = lineage { m.lineage = v }
    if let v = embeddedUserPath { m.embeddedUserPath = v }
    if let v = thirdParty { m.thirdParty = v }
    if let v = children { m.children = v }
    if let v = unknownAge { m.unknownAge = v }
    return m
  }

  /// The policy these settings give, with `runStart` as the default cutoff.
  public func policy(runStart: Timestamp) throws(UsageError) -> Policy {
    var p = Policy(cutoff: runStart)
    if let v = purpose { p.purpose = v }
    if let v = cutoff {
      guard let t = Timestamp.parseRFC3339(v) else {
        throw UsageError("--cutoff must be an RFC 3339 date-time, got \"\(v)\"")
      }
      p.cutoff = t
    }
    if let v = protect {
      do {
        p.protection = try ProtectionSet(items: v.filter { !$0.isEmpty })
      } catch .unknownItem(let item) {
        throw UsageError("--protect: unknown item \"\(item)\"")
      } catch {
        throw UsageError("--protect needs at least one item")
      }
    }
    func choice<T: RawRepresentable & CaseIterable>(_ raw: String?, _ option: String)
      throws(UsageError) -> T? where T.RawValue == String
    {
      guard let raw else { return nil }
      guard let v = T(rawValue: raw) else {
        let allowed = T.allCases.map(\.rawValue).joined(separator: "|")
        throw UsageError("--\(option) must be one of \(allowed), got \"\(raw)\"")
      }
      return v
    }
    if let v: UnknownJurisdictionRule = try choice(unknownJurisdiction, "unknown-jurisdiction") {
      p.unknownJurisdiction = v
    }
    if let v: ObjectionScope = try choice(objections, "objections") { p.objections = v }
    if let v: ConsentCoverage = try choice(consentCovers, "consent-covers") {
      p.consentCovers = v
    }
    if let v: OutputCompression = try choice(compression, "compression") { p.compression = v }
    if let v = maxConsentAge {
      guard v >= 0 else { throw UsageError("--max-consent-age must be 0 or more days") }
      p.maxConsentAgeDays = v
    }
    if let v = noticeVersions { p.noticeVersions = v }
    func pointer(_ text: String, _ option: String, wildcards: Bool = false) throws(UsageError)
      -> JSONPointer
    {
      do { return try JSONPointer(text, wildcards: wildcards) } catch {
        throw UsageError("--\(option): \"\(text)\" is not a JSON Pointer (RFC 6901)")
      }
    }
    if let v = userIdPath { p.userIdPath = try pointer(v, "user-id-path") }
    if let v = timePath { p.timePath = try pointer(v, "time-path") }
    if let v = countryPath {
      var list: [JSONPointer] = []
      for t in v { list.append(try pointer(t, "country-path")) }
      guard list.count <= 60 else { throw UsageError("--country-path: at most 60 paths") }
      p.countryPaths = list
    }
    if let v = lenientLedger { p.lenientLedger = v }
    if let v = maxRecordBytes {
      guard v >= 0 && v <= Int64(Int32.max) else {
        throw UsageError("--max-record-bytes must be between 0 and \(Int32.max)")
      }
      p.maxRecordBytes = Int(v)
    }
    if let v = maxQuarantineRatio {
      guard v >= 0 && v <= 1 else {
        throw UsageError("--max-quarantine-ratio must be a fraction from 0 to 1")
      }
      p.maxQuarantineRatio = v
    }
    if p.compression == .zstd && !Codecs.hasZstd {
      throw UsageError(
        "--compression zstd: zstd support not built (build with the ZSTD trait, libzstd-dev)")
    }
    p.level = p.compression.defaultLevel
    if let v = level {
      let allowed = p.compression.levels
      guard allowed.contains(Int(clamping: v)) else {
        throw UsageError(
          "--level must be \(allowed.lowerBound) to \(allowed.upperBound) for \(p.compression.rawValue)"
        )
      }
      p.level = Int(v)
    }
    if let v = lineage { p.lineage = v }
    if let v: ThirdPartyRule = try choice(thirdParty, "third-party") { p.thirdParty = v }
    if let v: ChildrenRule = try choice(children, "children") { p.children = v }
    if let v: UnknownAgeRule = try choice(unknownAge, "unknown-age") { p.unknownAge = v }
    if let v = embeddedUserPath {
      var list: [JSONPointer] = []
      for t in v { list.append(try pointer(t, "embedded-user-path", wildcards: true)) }
      // The scanner follows at most 64 pointers: the id, the country paths, the time.
      guard list.count + p.countryPaths.count <= 62 else {
        throw UsageError("--embedded-user-path: at most 62 paths, country paths included")
      }
      p.embeddedUserPaths = list
    }
    return p
  }
}
