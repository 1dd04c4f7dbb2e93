import Foundation

/// Writes a deterministic synthetic export, consent ledger and jurisdiction tags, for demos,
/// tests and benchmarks (`consentgate generate`). The same options give the same bytes.
///
/// Records look like social-media exports: posts, comments and replies with nested author and
/// geo objects, mentions, hashtags, unicode, emoji and escapes, about 750 bytes each. With the
/// default policy the data exercises every reason that needs no option; ``Options`` adds the
/// rest.
public struct ExportGenerator {
  public struct Options: Sendable {
    public var records = 10_000
    public var users = 1_000
    public var seed: UInt64 = 1
    public var files = 1
    /// Leave out the edge cases other tools treat differently: broken lines, duplicate keys,
    /// lone surrogates, invalid codes.
    public var clean = false
    /// Add a bad ledger row (for `--lenient-ledger`).
    public var brokenLedgerRow = false
    /// Add one record over 16 MiB.
    public var oversized = false
    /// One record in three quotes one or two other users' posts at
    /// `/includes/tweets/*/author_id`, as X API v2 exports carry them (SPEC §13.1).
    public var embeds = false
    public var level = 6
    public init() {}
  }

  public let options: Options
  public init(options: Options) { self.options = options }

  /// The files written, relative to `directory`.
  public struct Written: Sendable {
    public var exports: [String]
    public var consent: String
    public var jurisdictions: String
  }

  private static let eea = [
    "DE", "FR", "ES", "IT", "NL", "PL", "SE", "AT", "BE", "IE", "PT", "DK", "FI", "GR", "CZ",
    "RO", "HU", "NO", "IS", "LI", "ES-CN", "el", " de ", "FR-GF",
  ]
  private static let elsewhere = [
    "US", "BR", "IN", "JP", "GB", "CH", "CA", "AU", "MX", "NG", "KR", "TR", "FR-PF", "GL", "uk",
  ]
  /// Frequent words: real posts are mostly these.
  private static let common = """
    the a to and of in is it you that for on with this my be at so just are was not have we \
    me but all like out get about one new now more what when today time people love good day \
    see know can your great from by up its how no do if or will go they he she our his her an \
    there here than been back still some got think really make after first last best every \
    never always want need too much very home work night week year data model training thanks
    """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
  /// Rarer tokens: unicode, emoji and JSON escapes, as exports carry them.
  private static let special = [
    "café", "naïve", "Zürich", "straße", "niño", "ελληνικά", "русский", "日本語", "中文", "한국어",
    "🚀", "🎉", "😀", "👩‍💻", "❤️", "\\\"quoted\\\"", "line\\nbreak", "tab\\there", "caf\\u00e9",
    "path\\/to", "a\\\\b", "\\ud83d\\ude00",
  ]
  private static let consonants = Array("bcdfghjklmnprstvwzy")
  private static let vowels = Array("aeiou")
  private static let base62 = Array(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

  /// A made-up word of 1–4 syllables: the long tail of a real vocabulary.
  private static func pseudoWord(_ rng: inout SplitMix64) -> String {
    var w = ""
    for _ in 0..<(1 + Int(rng.next() % 4)) {
      w.append(consonants[Int(rng.next() % UInt64(consonants.count))])
      w.append(vowels[Int(rng.next() % UInt64(vowels.count))])
      if rng.next() % 3 == 0 { w.append(consonants[Int(rng.next() % UInt64(consonants.count))]) }
    }
    return w
  }

  /// `v / 100` written with two decimals, exactly.
  private static func decimal(_ v: Int) -> String {
    let a = abs(v)
    let cents = a % 100
    return (v < 0 ? "-" : "") + "\(a / 100)." + (cents < 10 ? "0" : "") + "\(cents)"
  }

  private static func token(_ rng: inout SplitMix64, _ length: Int) -> String {
    String((0..<length).map { _ in base62[Int(rng.next() % 62)] })
  }

  /// Post text: mostly frequent words, a long tail of rare ones, some numbers, links,
  /// mentions, unicode, emoji and escapes.
  private static func postText(_ rng: inout SplitMix64) -> String {
    var text = ""
    let count = 25 + Int(rng.next() % 70)
    for w in 0..<count {
      if w > 0 { text += " " }
      let roll = rng.next() % 100
      switch roll {
      case 0..<80: text += common[Int(rng.next() % UInt64(common.count))]
      case 80..<89: text += pseudoWord(&rng)
      case 89..<92: text += String(rng.next() % 100_000)
      case 92..<93: text += "https://ex.am/\(token(&rng, 10))"
      case 93..<96: text += "#\(pseudoWord(&rng))"
      default: text += special[Int(rng.next() % UInt64(special.count))]
      }
    }
    return text
  }

  /// Writes everything under `directory`.
  public func write(to directory: String) throws -> Written {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var rng = SplitMix64(seed: options.seed)
    let users = max(1, options.users)

    // Users: jurisdiction, consent profile.
    var tagRows: [String] = ["user_id,country"]
    var ledgerRows: [String] = ["user_id,purpose,status,recorded_at,notice_version,expires_at"]
    let base: Int64 = 1_704_067_200  // 2024-01-01
    func time(_ s: Int64) -> String { Timestamp(seconds: s).rfc3339 }
    for u in 0..<users {
      let id = userID(u)
      let j = rng.next() % 100
      if j < 55 {
        tagRows.append("\(id),\(Self.eea[Int(rng.next() % UInt64(Self.eea.count))])")
        if rng.next() % 10 == 0 { tagRows.append("\(id),\(Self.eea[Int(rng.next() % 5)])") }
      } else if j < 95 {
        tagRows.append("\(id),\(Self.elsewhere[Int(rng.next() % UInt64(Self.elsewhere.count))])")
      } else if j < 96 && !options.clean {
        tagRows.append("\(id),XX")
      } else if j < 97 {
        tagRows.append("\(id),")
      }
      let granted = base + Int64(rng.next() % 40_000_000)
      let c = rng.next() % 100
      let notice = ["v1", "v2", "v2.1"][Int(rng.next() % 3)]
      if c < 50 {
        ledgerRows.append("\(id),ai_training,granted,\(time(granted)),\(notice),")
      } else if c < 58 {
        ledgerRows.append("\(id),ai_training,granted,\(time(granted)),\(notice),")
        ledgerRows.append("\(id),ai_training,withdrawn,\(time(granted + 86_400 * 30)),,")
      } else if c < 62 {
        ledgerRows.append("\(id),ai_training,objected,\(time(granted)),,")
      } else if c < 66 {
        ledgerRows.append(
          "\(id),ai_training,granted,\(time(granted)),\(notice),\(time(granted + 86_400 * 200))")
      } else if c < 74 {
        ledgerRows.append("\(id),ads,granted,\(time(granted)),\(notice),")
      } else if c < 76 {
        // A grant with the same time as a withdrawal: the withdrawal wins.
        ledgerRows.append("\"\(id)\",\"ai_training\",GRANTED,\(granted),\(notice),")
        ledgerRows.append("\(id),ai_training,Withdrawn,\(granted),,")
      }
    }
    if options.brokenLedgerRow {
      ledgerRows.append("\(userID(0)),ai_training,maybe,\(time(base)),v2,")
    }
    try Data((ledgerRows.joined(separator: "\n") + "\n").utf8).write(
      to: URL(fileURLWithPath: directory + "/consent.csv"))
    try Data((tagRows.joined(separator: "\n") + "\n").utf8).write(
      to: URL(fileURLWithPath: directory + "/jurisdictions.csv"))

    // Records.
    let files = max(1, options.files)
    var exports: [String] = []
    let perFile = (options.records + files - 1) / files
    var written = 0
    for f in 0..<files {
      let name = files == 1 ? "posts.jsonl.gz" : String(format: "posts-%03d.jsonl.gz", f + 1)
      exports.append(name)
      let out = try OutputFile(finalPath: directory + "/" + name)
      let gzip = GzipMemberWriter(level: options.level)
      var block: [UInt8] = []
      var compressed: [UInt8] = []
      let count = min(perFile, options.records - written)
      for r in 0..<count {
        appendRecord(number: written + r, users: users, rng: &rng, to: &block)
        if options.oversized && f == 0 && r == count / 2 {
          block.append(contentsOf: #"{"user_id":"1000000","text":""#.utf8)
          block.append(contentsOf: repeatElement(UInt8(ascii: "a"), count: 17 << 20))
          block.append(contentsOf: "\"}\n".utf8)
        }
        if block.count >= 1 << 20 {
          compressed.removeAll(keepingCapacity: true)
          gzip.compress(block, appendingTo: &compressed)
          try out.write(compressed)
          block.removeAll(keepingCapacity: true)
        }
      }
      compressed.removeAll(keepingCapacity: true)
      gzip.compress(block, appendingTo: &compressed)
      try out.write(compressed)
      _ = try out.commit()
      written += count
    }
    return Written(exports: exports, consent: "consent.csv", jurisdictions: "jurisdictions.csv")
  }

  /// Ids are digit strings so that a record may carry one as a JSON integer: `1000042` and
  /// `"1000042"` are the same user (SPEC §2.3).
  private func userID(_ u: Int) -> String { String(1_000_000 + u) }

  private func appendRecord(number: Int, users: Int, rng: inout SplitMix64, to out: inout [UInt8]) {
    let u = Int(rng.next() % UInt64(users))
    let kind = ["post", "comment", "reply"][Int(rng.next() % 3)]
    let created = 1_704_067_200 + Int64(rng.next() % 60_000_000)
    let text = Self.postText(&rng)
    let geo = Self.eea.prefix(10) + Self.elsewhere.prefix(6)
    let country = geo[geo.index(geo.startIndex, offsetBy: Int(rng.next() % UInt64(geo.count)))]
    var mentions: [String] = []
    for _ in 0..<Int(rng.next() % 4) {
      mentions.append("\"@\(userID(Int(rng.next() % UInt64(users))))\"")
    }
    let idField: String
    if rng.next() % 3 == 0 {
      idField = "\"user_id\":\(userID(u))"
    } else {
      idField = "\"user_id\":\"\(userID(u))\""
    }
    var line =
      "{\"id\":\"\(kind)-\(number)\",\"uid\":\"\(Self.token(&rng, 8))\",\(idField),\"type\":\"\(kind)\","
      + "\"created_at\":\"\(Timestamp(seconds: created).rfc3339)\","
      + "\"author\":{\"handle\":\"@user\(userID(u))\",\"display_name\":\"User \(u) ✨\","
      + "\"followers\":\(rng.next() % 100_000),\"verified\":\(rng.next() % 5 == 0)},"
      + "\"text\":\"\(text)\",\"lang\":\"\(["en", "de", "fr", "es", "ja"][Int(rng.next() % 5)])\","
      + "\"geo\":{\"country\":\"\(country)\",\"place\":{\"name\":\"Somewhere\",\"lat\":\(Self.decimal(Int(rng.next() % 18000) - 9000)),\"lon\":\(Self.decimal(Int(rng.next() % 36000) - 18000))}},"
      + "\"mentions\":[\(mentions.joined(separator: ","))],"
      + "\"hashtags\":[\"#ai\",\"#data\"],"
      + "\"metrics\":{\"likes\":\(rng.next() % 5000),\"shares\":\(rng.next() % 500),\"replies\":\(rng.next() % 300)},"
      + "\"reply_to\":\(kind == "reply" ? "\"post-\(rng.next() % UInt64(max(1, number)))\"" : "null"),"
      + "\"source\":\"web\"}"
    if options.embeds && rng.next() % 3 == 0 {
      var quoted: [String] = []
      for k in 0...Int(rng.next() % 2) {
        let other = userID(Int(rng.next() % UInt64(users)))
        quoted.append(
          "{\"id\":\"q\(number)-\(k)\",\"author_id\":\"\(other)\",\"text\":\"\(Self.postText(&rng))\"}"
        )
      }
      line =
        String(line.dropLast()) + ",\"includes\":{\"tweets\":[\(quoted.joined(separator: ","))]}}"
    }
    if !options.clean {
      switch rng.next() % 400 {
      case 0: line = String(line.dropLast(3))  // cut short: malformed JSON
      case 1:
        line = "{\"user_id\":\"\(userID(u))\",\"user_id\":\"\(userID(u + 1))\",\"text\":\"dup\"}"
      case 2: line = "{\"text\":\"no author\",\"created_at\":\"2024-05-01T00:00:00Z\"}"
      case 3: line = "{\"user_id\":true,\"text\":\"odd id\"}"
      case 4: line = "{\"user_id\":\"\\ud800\",\"text\":\"lone surrogate\"}"
      case 5: line = ""  // a blank line
      case 6:
        out.append(contentsOf: "{\"user_id\":\"\(userID(u))\",\"text\":\"bad \u{FFFD}".utf8)
        out.append(contentsOf: [0xC3, 0x28])
        out.append(contentsOf: "\"}\n".utf8)
        return
      case 7: line = "{\"user_id\":\"\(userID(u))\",\"text\":\"no time\"}"
      default: break
      }
    }
    out.append(contentsOf: line.utf8)
    if rng.next() % 50 == 0 { out.append(0x0D) }  // some CRLF line ends
    out.append(0x0A)
  }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
