import Foundation
import Testing

@testable import ConsentGate

/// The conservation test of ``ConservationTests`` with SPEC §13 switched on at random:
/// embedded people at two paths (one with `*`), `--third-party`, `--children check` with
/// birth dates and parental consent across the dates the Danish and Slovenian ages changed,
/// and `--unknown-age`. The naive decision here is written from SPEC §3 and §13 alone: it
/// judges every grant at the deciding instant and takes the code earliest in §13.3, rather
/// than ranking grants as the library does.
@Suite struct EmbeddedAndChildrenConservationTests {
  struct Event {
    var user: String
    var purpose: String
    var status: String
    var at: Int64
    var birth: String
    var parental: String
  }

  static let users = ["u1", "u2", "u3", "u4", "u5", "17", "u7"]
  static let countries = ["DE", "fr", "DK", "si", "BE", "ES-CN", "EL", " US ", "GB", "XX", ""]
  static let births = [
    "", "", "2006-03-10", "2008-02-29", "2009-07-01", "2010-01-01", "2010-12-31", "2011-06-15",
    "2012-02-29",
  ]

  /// 2022-10-01, 2023-01-25, 2023-01-26 (SI 15), 2023-02-28, 2023-03-01, 2023-12-31,
  /// 2024-01-01 (DK 15), 2024-02-29, 2024-05-31 and 2024-03-01 at noon.
  static let instants: [Int64] = [
    1_664_582_400, 1_674_604_800, 1_674_691_200, 1_677_542_400, 1_677_628_800, 1_703_980_800,
    1_704_067_200, 1_709_164_800, 1_717_113_600, 1_709_294_400,
  ]

  /// Order of codes, SPEC §13.3 (the part a grant can produce).
  static let order = [
    "objected", "no_consent", "withdrawn", "consent_expired", "child_consent_invalid", "valid",
  ]

  func signal(_ raw: String, protect: String) -> String {
    let code = raw.trimmingCharacters(in: .whitespaces).uppercased()
    if code.isEmpty { return "none" }
    let inEEA: [String: Bool] = [
      "DE": true, "FR": true, "DK": true, "SI": true, "BE": true, "ES-CN": true, "EL": true,
      "US": false, "GB": false,
    ]
    guard let eea = inEEA[code] else { return "invalid" }
    return protect == "uk" ? (code == "GB" ? "protected" : "not") : (eea ? "protected" : "not")
  }

  /// The age of digital consent of one protected code on a UTC date, from the SPEC's list.
  func ageOfConsent(_ raw: String, on date: String) -> Int {
    var code = raw.trimmingCharacters(in: .whitespaces).uppercased()
    if code == "ES-CN" { code = "ES" }
    if code == "EL" { code = "GR" }
    switch code {
    case "BE", "GB": return 13
    case "ES": return 14
    case "FR", "GR": return 15
    case "SI": return date >= "2023-01-26" ? 15 : 16
    case "DK": return date <= "2023-12-31" ? 13 : 15
    default: return 16
    }
  }

  func utcDate(_ t: Int64) -> String {
    let f = DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    f.locale = Locale(identifier: "en_US_POSIX")
    f.dateFormat = "yyyy-MM-dd"
    return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
  }

  /// Full years from `birth` to `date` (both YYYY-MM-DD); 29 February counts as 1 March in
  /// other years.
  func fullYears(_ birth: String, _ date: String) -> Int {
    let b = birth.split(separator: "-").map { Int($0)! }
    let d = date.split(separator: "-").map { Int($0)! }
    let leap = (d[0] % 4 == 0 && d[0] % 100 != 0) || d[0] % 400 == 0
    var birthday = (b[1], b[2])
    if b[1] == 2 && b[2] == 29 && !leap { birthday = (3, 1) }
    return d[0] - b[0] - ((d[1], d[2]) < birthday ? 1 : 0)
  }

  struct Config {
    var protect: String
    var unknown: String
    var objections: String
    var children: Bool
    var unknownAge: String
  }

  /// The code of `user`'s consent (§3.2 with §13.2) for a record whose protected codes are
  /// `codes`; "valid" when it stands.
  func consentCode(_ user: String, _ events: [Event], cutoff: Int64, codes: [String], _ c: Config)
    -> (String, Int64?)
  {
    let mine = events.filter { $0.user == user && $0.purpose == "ai_training" && $0.at <= cutoff }
    guard let latest = mine.map(\.at).max() else { return ("no_consent", nil) }
    var best = "valid"
    for e in mine where e.at == latest {
      var code: String
      switch e.status {
      case "objected": code = "objected"
      case "withdrawn": code = "withdrawn"
      default:
        code = "valid"
        if c.children && !["true"].contains(e.parental.lowercased()) {
          let date = utcDate(e.at)
          let required =
            c.protect == "all" || codes.isEmpty
            ? 16 : codes.map { ageOfConsent($0, on: date) }.max()!
          if e.birth.isEmpty {
            if c.unknownAge == "child" { code = "child_consent_invalid" }
          } else if fullYears(e.birth, date) < required {
            code = "child_consent_invalid"
          }
        }
      }
      if Self.order.firstIndex(of: code)! < Self.order.firstIndex(of: best)! { best = code }
    }
    return (best, latest)
  }

  /// Rows 6–9 of §3.3 (and 12–13) for `user` with extra record signals: the code, or
  /// "consented"/"not_protected".
  func judge(
    _ user: String, recordCountries: [String], _ events: [Event], _ tags: [String: [String]],
    cutoff: Int64, _ c: Config
  ) -> (reason: String, grantAt: Int64?, isProtected: Bool?) {
    let all = tags[user, default: []] + recordCountries
    let signals = all.map { signal($0, protect: c.protect) }
    var isProtected: Bool
    if c.protect == "all" {
      isProtected = true
    } else if signals.contains("invalid") {
      return ("invalid_country", nil, nil)
    } else if signals.contains("protected") {
      isProtected = true
    } else if signals.contains("not") {
      isProtected = false
    } else {
      if c.unknown == "quarantine" { return ("unknown_jurisdiction", nil, nil) }
      isProtected = c.unknown == "protect"
    }
    let codes =
      c.protect == "all" ? [] : all.filter { signal($0, protect: c.protect) == "protected" }
    let (state, at) = consentCode(user, events, cutoff: cutoff, codes: codes, c)
    if state == "objected" && (isProtected || c.objections == "everywhere") {
      return ("objected", at, isProtected)
    }
    if !isProtected { return ("not_protected", at, false) }
    if state != "valid" { return (state, at, true) }
    return ("consented", at, true)
  }

  @Test func everyRecordIsAccountedForAndKeptOnlyWhenTheNaiveDecisionKeeps() throws {
    var rng = SplitMix64(seed: 1313)
    var seen: [String: Int] = [:]
    for round in 0..<12 {
      let dir = temporaryFolder("conservation13-\(round)")
      let cutoff: Int64 = 1_717_200_000  // 2024-06-01
      var events: [Event] = []
      for _ in 0..<(8 + Int(rng.next() % 20)) {
        events.append(
          Event(
            user: Self.users[Int(rng.next() % UInt64(Self.users.count))],
            purpose: rng.next() % 8 == 0 ? "ads" : "ai_training",
            status: ["granted", "granted", "granted", "withdrawn", "objected"][
              Int(rng.next() % 5)],
            // A few instants, so that grants at one instant are common, on the days the ages
            // change and around 29 February.
            at: Self.instants[Int(rng.next() % UInt64(Self.instants.count))],
            birth: Self.births[Int(rng.next() % UInt64(Self.births.count))],
            parental: ["", "", "true", "FALSE", "True"][Int(rng.next() % 5)]))
      }
      var ledger = "user_id,purpose,status,recorded_at,birth_date,parental_consent\n"
      for e in events {
        ledger += "\(e.user),\(e.purpose),\(e.status),\(e.at),\(e.birth),\(e.parental)\n"
      }
      var tags: [String: [String]] = [:]
      var tagCSV = "user_id,country\n"
      for u in Self.users where rng.next() % 4 != 0 {
        for _ in 0..<(1 + Int(rng.next() % 2)) {
          let c = Self.countries[Int(rng.next() % UInt64(Self.countries.count))]
          tags[u, default: []].append(c)
          tagCSV += "\(u),\(c)\n"
        }
      }
      writeFile(dir + "/ledger.csv", ledger)
      writeFile(dir + "/tags.csv", tagCSV)

      let c = Config(
        protect: ["eea", "eea", "uk", "all"][Int(rng.next() % 4)],
        unknown: ["quarantine", "protect", "allow"][Int(rng.next() % 3)],
        objections: ["everywhere", "protected-only"][Int(rng.next() % 2)],
        children: rng.next() % 4 != 0,
        unknownAge: ["child", "adult"][Int(rng.next() % 2)])
      let embedded = rng.next() % 5 != 0
      let thirdParty = ["quarantine", "drop"][Int(rng.next() % 2)]
      var settings = PolicySettings()
      settings.cutoff = Timestamp(seconds: cutoff).rfc3339
      settings.protect = [c.protect]
      settings.unknownJurisdiction = c.unknown
      settings.objections = c.objections
      settings.countryPath = ["/geo/country"]
      settings.compression = "none"
      settings.children = c.children ? "check" : "off"
      settings.unknownAge = c.unknownAge
      settings.thirdParty = thirdParty
      if embedded {
        settings.embeddedUserPath = ["/includes/tweets/*/author_id", "/reply_to/user_id"]
      }
      let policy = try settings.policy(runStart: Timestamp(seconds: cutoff))

      var expectedKept: [[UInt8]] = []
      var naiveCounts: [String: Int] = [:]
      var naiveDropped = 0
      var text: [UInt8] = []
      for _ in 0..<(80 + Int(rng.next() % 120)) {
        let user = Self.users[Int(rng.next() % UInt64(Self.users.count))]
        let country: String? =
          rng.next() % 2 == 0 ? Self.countries[Int(rng.next() % UInt64(Self.countries.count))] : nil
        var json = "{\"user_id\":\(user == "17" ? "17" : "\"\(user)\"")"
        if let country { json += ",\"geo\":{\"country\":\"\(country)\"}" }
        // Embedded people: ids, their own author, nobody, values that are not ids, and a
        // duplicated key inside one array element.
        var people: [String] = []
        var unidentified = false
        var duplicate = false
        let shape = rng.next() % 10
        if shape < 6 {
          var items: [String] = []
          for _ in 0..<(rng.next() % 3) {
            let pick = rng.next() % 12
            switch pick {
            case 0:
              items.append(#"{"author_id":1.5}"#)
              unidentified = true
            case 1:
              items.append(#"{"author_id":""}"#)
              unidentified = true
            case 2: items.append(#"{"author_id":null}"#)
            case 3: items.append(#"{"text":"no id"}"#)
            case 4:
              items.append(#"{"author_id":"u1","author_id":"u2"}"#)
              duplicate = true
            case 5:
              items.append(#"{"author_id":17}"#)
              people.append("17")
            case 6:
              items.append(#"{"author_id":"u\u0031"}"#)
              people.append("u1")
            default:
              let p = Self.users[Int(rng.next() % UInt64(Self.users.count))]
              items.append("{\"author_id\":\"\(p)\"}")
              people.append(p)
            }
          }
          json += ",\"includes\":{\"tweets\":[\(items.joined(separator: ","))]}"
        } else if shape == 6 {
          let p = Self.users[Int(rng.next() % UInt64(Self.users.count))]
          json += ",\"reply_to\":{\"user_id\":\"\(p)\"}"
          people.append(p)
        } else if shape == 7 {
          // An object where the path wants an array: `*` matches nothing.
          json += #","includes":{"tweets":{"*":{"author_id":true}}}"#
        }
        json += ",\"text\":\"hello\"}"
        let line = Array(json.utf8)
        text += line + [0x0A]

        var (reason, _, _) = judge(
          user, recordCountries: country.map { [$0] } ?? [], events, tags, cutoff: cutoff, c)
        var dropped = ["objected", "no_consent", "withdrawn", "child_consent_invalid"].contains(
          reason)
        if embedded && (reason == "consented" || reason == "not_protected") {
          if duplicate {
            reason = "duplicate_key"
          } else {
            let others = people.filter { $0 != user }
            let stranger = others.contains { person in
              let (r, _, _) = judge(person, recordCountries: [], events, tags, cutoff: cutoff, c)
              return r != "consented" && r != "not_protected"
            }
            if unidentified || stranger {
              reason = "third_party_data"
              dropped = thirdParty == "drop"
            }
          }
        }
        naiveCounts[reason, default: 0] += 1
        if dropped { naiveDropped += 1 }
        if reason == "consented" || reason == "not_protected" { expectedKept.append(line) }
      }
      writeFile(dir + "/in.jsonl", text)

      var config = FilterConfiguration(
        policy: policy, inputs: [dir + "/in.jsonl"], outputDirectory: dir + "/out")
      config.consentFiles = [dir + "/ledger.csv"]
      config.jurisdictionFiles = [dir + "/tags.csv"]
      config.threads = 1 + Int(rng.next() % 2)
      config.blockTarget = 512
      let (report, outcome) = try Filter(configuration: config).run()
      #expect(outcome == .success)
      let counts = report.inputs[0].counts
      let label = "round \(round) \(c) embedded \(embedded) \(thirdParty)"
      #expect(counts.records == counts.kept + counts.dropped + counts.quarantined, "\(label)")
      #expect(counts.dropped == naiveDropped, "\(label)")
      for reason in Reason.allCases {
        #expect(counts.count(of: reason) == naiveCounts[reason.code] ?? 0, "\(label) \(reason)")
      }
      let kept = readBytes("\(dir)/out/kept/in.jsonl").split(
        separator: 0x0A, omittingEmptySubsequences: false
      ).dropLast().map(Array.init)
      #expect(kept == expectedKept, "\(label) kept")
      seen.merge(naiveCounts, uniquingKeysWith: +)
    }
    // The rounds reach every code this test is about, so a pass means something.
    for code in [
      "child_consent_invalid", "third_party_data", "duplicate_key", "consented", "not_protected",
    ] {
      #expect(seen[code, default: 0] > 5, "\(code): \(seen)")
    }
  }
}
