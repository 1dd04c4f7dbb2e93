import Testing

@testable import ConsentGate

/// The consent state of user `u` after loading `rows` (CSV data rows) under `policy`.
func stateOf(
  _ rows: [String], policy: Policy? = nil,
  header: String = "user_id,purpose,status,recorded_at,notice_version,expires_at"
) throws -> UserFacts {
  let p = try policy ?? makePolicy()
  let index = try loadIndex(policy: p, ledger: ([header] + rows).joined(separator: "\n") + "\n")
  return Array("u".utf8).withUnsafeBytes { index.facts(for: $0) }
}

@Suite struct ConsentStateTests {
  @Test func noEventIsNoConsent() throws {
    #expect(try stateOf([]).state == .noConsent)
  }

  @Test func latestEventDecides() throws {
    #expect(
      try stateOf([
        "u,ai_training,granted,2024-01-01T00:00:00Z,,",
        "u,ai_training,withdrawn,2024-02-01T00:00:00Z,,",
      ]).state == .withdrawn)
    #expect(
      try stateOf([
        "u,ai_training,withdrawn,2024-02-01T00:00:00Z,,",
        "u,ai_training,granted,2024-03-01T00:00:00Z,,",
      ]).state == .valid)
  }

  @Test func equalTimeWithdrawalBeatsGrant() throws {
    #expect(
      try stateOf([
        "u,ai_training,withdrawn,2024-01-01T00:00:00Z,,",
        "u,ai_training,granted,2024-01-01T00:00:00Z,,",
      ]).state == .withdrawn)
    #expect(
      try stateOf([
        "u,ai_training,granted,2024-01-01T00:00:00Z,,", "u,ai_training,withdrawn,1704067200,,",
      ]).state == .withdrawn)
  }

  @Test func equalTimeObjectionBeatsWithdrawal() throws {
    #expect(
      try stateOf([
        "u,ai_training,objected,2024-01-01T00:00:00Z,,",
        "u,ai_training,withdrawn,2024-01-01T01:00:00+01:00,,",
      ]).state == .objected)
  }

  @Test func eventsAfterCutoffAreIgnored() throws {
    #expect(
      try stateOf([
        "u,ai_training,granted,2024-01-01T00:00:00Z,,",
        "u,ai_training,withdrawn,2025-06-01T00:00:00.001Z,,",
      ]).state == .valid)
  }

  @Test func eventAtCutoffCounts() throws {
    #expect(try stateOf(["u,ai_training,granted,2025-06-01T00:00:00Z,,"]).state == .valid)
    #expect(
      try stateOf([
        "u,ai_training,granted,2024-01-01T00:00:00Z,,",
        "u,ai_training,withdrawn,2025-06-01T00:00:00Z,,",
      ]).state == .withdrawn)
  }

  @Test func otherPurposeDoesNotCount() throws {
    #expect(try stateOf(["u,ads,granted,2024-01-01T00:00:00Z,,"]).state == .noConsent)
    #expect(try stateOf(["u,AI_training,granted,2024-01-01T00:00:00Z,,"]).state == .noConsent)
    let p = try makePolicy { $0.purpose = "ads" }
    #expect(try stateOf(["u,ads,granted,2024-01-01T00:00:00Z,,"], policy: p).state == .valid)
  }

  @Test func statusIsCaseInsensitive() throws {
    #expect(try stateOf(["u,ai_training,GRANTED,2024-01-01T00:00:00Z,,"]).state == .valid)
    #expect(try stateOf(["u,ai_training,Objected,2024-01-01T00:00:00Z,,"]).state == .objected)
  }

  @Test func expiryAtExactlyCutoffIsExpired() throws {
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,,2025-06-01T00:00:00Z"]).state
        == .expired)
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,,2025-06-01T00:00:01Z"]).state
        == .valid)
  }

  @Test func maxConsentAgeBoundary() throws {
    let p = try makePolicy { $0.maxConsentAge = 10 }
    // Exactly 10 days before the cutoff: not more than the limit.
    #expect(
      try stateOf(["u,ai_training,granted,2025-05-22T00:00:00Z,,"], policy: p).state == .valid)
    #expect(
      try stateOf(["u,ai_training,granted,2025-05-21T23:59:59.9Z,,"], policy: p).state == .expired)
  }

  @Test func noticeVersions() throws {
    let p = try makePolicy { $0.noticeVersions = ["v2", "v3"] }
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,v2,"], policy: p).state == .valid)
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,v1,"], policy: p).state
        == .noticeOutdated)
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,,"], policy: p).state
        == .noticeOutdated)
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,V2,"], policy: p).state
        == .noticeOutdated)
    // Without the option a missing notice is fine.
    #expect(try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,,"]).state == .valid)
  }

  @Test func grantBothExpiredAndOutdatedIsExpired() throws {
    let p = try makePolicy { $0.noticeVersions = ["v2"] }
    #expect(
      try stateOf(["u,ai_training,granted,2024-01-01T00:00:00Z,v1,2024-02-01T00:00:00Z"], policy: p)
        .state == .expired)
  }

  @Test func equalTimeGrantsLeastFavourableWins() throws {
    let p = try makePolicy { $0.noticeVersions = ["v2"] }
    #expect(
      try stateOf(
        [
          "u,ai_training,granted,2024-01-01T00:00:00Z,v2,",
          "u,ai_training,granted,2024-01-01T00:00:00Z,v1,",
        ], policy: p
      ).state == .noticeOutdated)
    #expect(
      try stateOf([
        "u,ai_training,granted,2024-01-01T00:00:00Z,,",
        "u,ai_training,granted,2024-01-01T00:00:00Z,,2024-06-01T00:00:00Z",
      ]).state == .expired)
  }

  @Test func grantInEffectIsTheLatest() throws {
    let index = try loadIndex(
      policy: try makePolicy(),
      ledger: """
        user_id,purpose,status,recorded_at
        u,ai_training,granted,2024-01-01T00:00:00Z
        u,ai_training,granted,2024-05-01T00:00:00Z

        """)
    let facts = Array("u".utf8).withUnsafeBytes { index.facts(for: $0) }
    #expect(index.decidedAt(facts) == Timestamp.parseRFC3339("2024-05-01T00:00:00Z"))
  }

  /// For random ledgers and cutoffs, the index equals a naive rescan of the events.
  @Test func indexAgreesWithNaiveRescan() throws {
    var rng = SplitMix64(seed: 99)
    let statuses = ["granted", "withdrawn", "objected"]
    for round in 0..<40 {
      let cutoffSeconds = Int64(1_700_000_000 + rng.next() % 1000)
      let cutoff = Timestamp(seconds: cutoffSeconds)
      let maxAge: Int64? = round % 3 == 0 ? Int64(rng.next() % 3) : nil
      var policy = try makePolicy()
      policy.cutoff = cutoff
      policy.maxConsentAgeDays = maxAge
      policy.noticeVersions = round % 2 == 0 ? ["v2"] : nil
      var events:
        [(
          user: String, purpose: String, status: String, at: Int64, notice: String, expires: Int64?
        )] = []
      for _ in 0..<200 {
        let expires: Int64? =
          rng.next() % 4 == 0 ? cutoffSeconds - 500 + Int64(rng.next() % 1000) : nil
        events.append(
          (
            "u\(rng.next() % 20)", rng.next() % 5 == 0 ? "ads" : "ai_training",
            statuses[Int(rng.next() % 3)], cutoffSeconds - 300_000 + Int64(rng.next() % 300_500),
            ["", "v1", "v2"][Int(rng.next() % 3)], expires
          ))
      }
      let csv =
        ["user_id,purpose,status,recorded_at,notice_version,expires_at"]
        + events.map {
          "\($0.user),\($0.purpose),\($0.status),\($0.at),\($0.notice),\($0.expires.map(String.init) ?? "")"
        }
      let index = try loadIndex(policy: policy, ledger: csv.joined(separator: "\n"))
      for u in 0..<20 {
        // Naive: judge each event, keep the latest, ties to the most restrictive.
        var best: (at: Int64, rank: Int, name: ConsentState)?
        for e in events
        where e.user == "u\(u)" && e.purpose == "ai_training" && e.at <= cutoffSeconds {
          var state: ConsentState
          switch e.status {
          case "objected": state = .objected
          case "withdrawn": state = .withdrawn
          default:
            if let x = e.expires, x <= cutoffSeconds {
              state = .expired
            } else if let days = maxAge, cutoffSeconds - e.at > days * 86_400 {
              state = .expired
            } else if policy.noticeVersions != nil && e.notice != "v2" {
              state = .noticeOutdated
            } else {
              state = .valid
            }
          }
          let rank = Int(state.rawValue)
          if best == nil || e.at > best!.at || (e.at == best!.at && rank > best!.rank) {
            best = (e.at, rank, state)
          }
        }
        let got = Array("u\(u)".utf8).withUnsafeBytes { index.facts(for: $0) }
        #expect(got.state == (best?.name ?? .noConsent), "round \(round) user u\(u)")
      }
    }
  }
}
