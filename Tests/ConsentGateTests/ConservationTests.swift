import Foundation
import Testing

@testable import ConsentGate

/// Random corpora, ledgers, tags and policies, run through the library's `Filter`, checked
/// against a naive decision written here from SPEC §3 alone (no code shared with the
/// library's decider): every record is accounted for exactly once, kept records are exactly
/// those the naive decision keeps, and quarantine lines give back the original bytes.
@Suite struct ConservationTests {
  struct Event {
    var user: String
    var purpose: String
    var status: String
    var at: Int64
    var notice: String
    var expires: Int64?
  }

  /// What the test knows of each record line it wrote.
  enum Line {
    case blank
    case broken(Reason)  // malformed_json, invalid_utf8, duplicate_key, missing/invalid id
    case record(user: String, country: String?, time: Int64?)
  }

  static let users = ["u1", "u2", "u3", "u4", "u5", "17", "u7", "u8"]
  static let countries = ["DE", "fr", " US ", "GB", "ES-CN", "FR-PF", "XX", "", "EL", "CH", "JP"]

  func naiveState(
    _ user: String, _ events: [Event], cutoff: Int64, maxAge: Int64?, notices: [String]?
  )
    -> (String, Int64?)
  {
    var best: (at: Int64, rank: Int, state: String)?
    for e in events where e.user == user && e.purpose == "ai_training" && e.at <= cutoff {
      let state: String
      let rank: Int
      switch e.status {
      case "objected": (state, rank) = ("objected", 5)
      case "withdrawn": (state, rank) = ("withdrawn", 4)
      default:
        if let x = e.expires, x <= cutoff {
          (state, rank) = ("consent_expired", 3)
        } else if let d = maxAge, cutoff - e.at > d * 86_400 {
          (state, rank) = ("consent_expired", 3)
        } else if let n = notices, !n.contains(e.notice) || e.notice.isEmpty {
          (state, rank) = ("notice_outdated", 2)
        } else {
          (state, rank) = ("valid", 1)
        }
      }
      if best == nil || e.at > best!.at || (e.at == best!.at && rank > best!.rank) {
        best = (e.at, rank, state)
      }
    }
    return (best?.state ?? "no_consent", best?.at)
  }

  /// Protected, not protected, invalid or none, for the sets this test uses.
  func naiveSignal(_ raw: String, protect: String) -> String {
    let code = raw.trimmingCharacters(in: .whitespaces).uppercased()
    if code.isEmpty { return "none" }
    let valid: [String: Bool] = [
      "DE": true, "FR": true, "US": false, "GB": false, "ES-CN": true, "FR-PF": false, "EL": true,
      "CH": false, "JP": false,
    ]
    guard let inEEA = valid[code] else { return "invalid" }
    switch protect {
    case "uk": return code == "GB" ? "protected" : "not"
    default: return inEEA ? "protected" : "not"
    }
  }

  @Test func everyRecordIsAccountedForAndKeptOnlyWhenTheNaiveDecisionKeeps() throws {
    var rng = SplitMix64(seed: 2024)
    for round in 0..<12 {
      let dir = temporaryFolder("conservation\(round)")
      let cutoff: Int64 = 1_735_689_600  // 2025-01-01
      // Ledger and tags.
      var events: [Event] = []
      for _ in 0..<(5 + Int(rng.next() % 20)) {
        events.append(
          Event(
            user: Self.users[Int(rng.next() % UInt64(Self.users.count))],
            purpose: rng.next() % 6 == 0 ? "ads" : "ai_training",
            status: ["granted", "granted", "withdrawn", "objected"][Int(rng.next() % 4)],
            at: cutoff - 100 * 86_400 + Int64(rng.next() % (101 * 86_400)),
            notice: ["", "v1", "v2"][Int(rng.next() % 3)],
            expires: rng.next() % 5 == 0 ? cutoff - 86_400 + Int64(rng.next() % (2 * 86_400)) : nil)
        )
      }
      var ledger = "user_id,purpose,status,recorded_at,notice_version,expires_at\n"
      for e in events {
        ledger +=
          "\(e.user),\(e.purpose),\(e.status),\(e.at),\(e.notice),\(e.expires.map(String.init) ?? "")\n"
      }
      var tags: [String: [String]] = [:]
      var tagCSV = "user_id,country\n"
      for u in Self.users where rng.next() % 3 != 0 {
        let c = Self.countries[Int(rng.next() % UInt64(Self.countries.count))]
        tags[u, default: []].append(c)
        tagCSV += "\(u),\(c)\n"
      }
      writeFile(dir + "/ledger.csv", ledger)
      writeFile(dir + "/tags.csv", tagCSV)

      // Policy.
      let protect = ["eea", "uk", "all"][Int(rng.next() % 3)]
      let unknown = ["quarantine", "protect", "allow"][Int(rng.next() % 3)]
      let objections = ["everywhere", "protected-only"][Int(rng.next() % 2)]
      let covers = ["all", "since-grant"][Int(rng.next() % 2)]
      let maxAge: Int64? = rng.next() % 3 == 0 ? Int64(rng.next() % 60) : nil
      let notices: [String]? = rng.next() % 3 == 0 ? ["v2"] : nil
      var settings = PolicySettings()
      settings.cutoff = Timestamp(seconds: cutoff).rfc3339
      settings.protect = [protect]
      settings.unknownJurisdiction = unknown
      settings.objections = objections
      settings.consentCovers = covers
      settings.maxConsentAge = maxAge
      settings.noticeVersions = notices
      settings.countryPath = ["/geo/country"]
      settings.compression = "none"
      let policy = try settings.policy(runStart: Timestamp(seconds: cutoff))

      // Records: two inputs, one gzipped.
      var expectedKept: [String: [[UInt8]]] = [:]
      var lineBytes: [String: [[UInt8]]] = [:]
      var naiveCounts: [String: [String: Int]] = [:]
      var inputs: [String] = []
      for name in ["a.jsonl", "b.jsonl.gz"] {
        var text: [UInt8] = []
        var lines: [[UInt8]] = []
        for _ in 0..<(50 + Int(rng.next() % 150)) {
          var line: [UInt8]
          let kind = rng.next() % 20
          var model: Line
          switch kind {
          case 0: (line, model) = ([], .blank)
          case 1: (line, model) = (Array(#"{"user_id":"u1","#.utf8), .broken(.malformedJSON))
          case 2:
            (line, model) = (
              Array(#"{"user_id":"u1","t":""#.utf8) + [0xC0, 0x80] + Array(#""}"#.utf8),
              .broken(.invalidUTF8)
            )
          case 3:
            (line, model) = (
              Array(#"{"user_id":"u2","user_id":"u2"}"#.utf8), .broken(.duplicateKey)
            )
          case 4: (line, model) = (Array(#"{"text":"anonymous"}"#.utf8), .broken(.missingUserID))
          case 5: (line, model) = (Array(#"{"user_id":4.5}"#.utf8), .broken(.invalidUserID))
          default:
            let user = Self.users[Int(rng.next() % UInt64(Self.users.count))]
            let country: String? =
              rng.next() % 2 == 0
              ? Self.countries[Int(rng.next() % UInt64(Self.countries.count))] : nil
            let time: Int64? =
              rng.next() % 8 == 0 ? nil : cutoff - 120 * 86_400 + Int64(rng.next() % (120 * 86_400))
            let idText = user == "17" && rng.next() % 2 == 0 ? "17" : "\"\(user)\""
            var json = "{\"user_id\":\(idText),\"text\":\"caf\\u00e9 \(rng.next() % 1000) 😀\""
            if let country { json += ",\"geo\":{\"country\":\"\(country)\"}" }
            if let time { json += ",\"created_at\":\(time)" }
            json += "}"
            line = Array(json.utf8)
            model = .record(user: user, country: country, time: time)
          }
          lines.append(line)
          text += line
          text += rng.next() % 4 == 0 ? [0x0D, 0x0A] : [0x0A]
          // Naive decision for this line.
          var reason: String
          switch model {
          case .blank: continue
          case .broken(let r): reason = r.code
          case .record(let user, let country, let time):
            var signals = tags[user, default: []].map { naiveSignal($0, protect: protect) }
            if let country { signals.append(naiveSignal(country, protect: protect)) }
            var isProtected: Bool?
            if protect == "all" {
              isProtected = true
            } else if signals.contains("invalid") {
              isProtected = nil
              reason = "invalid_country"
            } else if signals.contains("protected") {
              isProtected = true
            } else if signals.contains("not") {
              isProtected = false
            } else {
              isProtected = unknown == "quarantine" ? nil : unknown == "protect"
            }
            let (state, grantAt) = naiveState(
              user, events, cutoff: cutoff, maxAge: maxAge, notices: notices)
            if protect != "all" && signals.contains("invalid") {
              reason = "invalid_country"
            } else if isProtected == nil {
              reason = "unknown_jurisdiction"
            } else if state == "objected" && (isProtected! || objections == "everywhere") {
              reason = "objected"
            } else if !isProtected! {
              reason = "not_protected"
            } else if state != "valid" {
              reason = state
            } else if covers == "since-grant" && time == nil {
              reason = "missing_timestamp"
            } else if covers == "since-grant" && time! < grantAt! {
              reason = "predates_consent"
            } else {
              reason = "consented"
            }
          }
          naiveCounts[name, default: [:]][reason, default: 0] += 1
          if reason == "consented" || reason == "not_protected" {
            expectedKept[name, default: []].append(line)
          }
        }
        lineBytes[name] = lines
        let path = dir + "/" + name
        writeFile(path, name.hasSuffix(".gz") ? gzipMember(text) : text)
        inputs.append(path)
      }

      var config = FilterConfiguration(
        policy: policy, inputs: inputs, outputDirectory: dir + "/out")
      config.consentFiles = [dir + "/ledger.csv"]
      config.jurisdictionFiles = [dir + "/tags.csv"]
      config.threads = 1 + Int(rng.next() % 3)
      config.blockTarget = 256
      let (report, outcome) = try Filter(configuration: config).run()
      #expect(outcome == .success)

      for (input, name) in zip(report.inputs, ["a.jsonl", "b.jsonl.gz"]) {
        let c = input.counts
        #expect(c.records == c.kept + c.dropped + c.quarantined, "round \(round) \(name)")
        let outName = name.replacingOccurrences(of: ".gz", with: "")
        // Kept: exactly the naive keeps, in order, byte for byte.
        let kept = readBytes("\(dir)/out/kept/\(outName)").split(
          separator: 0x0A, omittingEmptySubsequences: false
        ).dropLast().map(Array.init)
        #expect(kept == expectedKept[name, default: []], "round \(round) \(name) kept")
        for reason in Reason.allCases {
          #expect(
            c.count(of: reason) == naiveCounts[name]?[reason.code] ?? 0,
            "round \(round) \(name) \(reason.code)")
        }
        // Quarantine lines: parse, name a line, and give back the original bytes.
        let quarantine = String(
          decoding: readBytes("\(dir)/out/quarantine/\(outName)"), as: UTF8.self)
        var quarantinedLines: Set<Int> = []
        for q in quarantine.split(separator: "\n") {
          let object = try #require(
            try JSONSerialization.jsonObject(with: Data(q.utf8)) as? [String: Any])
          let lineNumber = object["line"] as! Int
          #expect(quarantinedLines.insert(lineNumber).inserted, "a line quarantined twice")
          let original = lineBytes[name]![lineNumber - 1]
          if let raw = object["raw"] as? String {
            #expect(Array(raw.utf8) == original)
          } else if let b64 = object["raw_base64"] as? String {
            #expect(Array(Data(base64Encoded: b64)!) == original)
          } else {
            // "record" is verbatim: find it in the line's text.
            let start = q.range(of: #""record":"#)!.upperBound
            #expect(Array(q[start..<q.index(before: q.endIndex)].utf8) == original)
          }
        }
        #expect(quarantinedLines.count == c.quarantined)
      }
    }
  }
}
