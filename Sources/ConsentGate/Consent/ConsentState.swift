/// A user's consent for the policy's purpose at the cutoff (SPEC §3.2).
///
/// The raw values order events that share a `recorded_at`: the higher one wins, so that at
/// equal times the restrictive event prevails (`objected` > `withdrawn` > `granted`), and
/// among grants the least favourable (expired > outdated > valid).
public enum ConsentState: UInt8, Sendable, Comparable, CaseIterable {
  case noConsent = 0
  case valid = 1
  case noticeOutdated = 2
  case expired = 3
  case withdrawn = 4
  case objected = 5

  public static func < (a: ConsentState, b: ConsentState) -> Bool { a.rawValue < b.rawValue }
}

/// The status column of a ledger row.
public enum ConsentStatus: String, Sendable {
  case granted, withdrawn, objected

  /// Matches `granted`, `withdrawn` or `objected` case-insensitively; nothing else (no
  /// trimming: a status with surrounding spaces is a bad row).
  public init?(_ bytes: UnsafeRawBufferPointer) {
    // Once per ledger row: plain byte comparisons, no collections.
    func matches(_ word: StaticString) -> Bool {
      guard bytes.count == word.utf8CodeUnitCount else { return false }
      let w = word.utf8Start
      for k in 0..<bytes.count {
        let c = bytes[k] | 0x20
        if c != w[k] || c < 0x61 { return false }
      }
      return true
    }
    if matches("granted") {
      self = .granted
    } else if matches("withdrawn") {
      self = .withdrawn
    } else if matches("objected") {
      self = .objected
    } else {
      return nil
    }
  }
}

/// Judges one ledger event at the cutoff, once, while the ledger loads.
public struct ConsentRules: Sendable {
  public let cutoff: Timestamp
  public let maxAgeSeconds: Int64?
  public let noticeVersions: Set<[UInt8]>?

  public init(policy: Policy) {
    cutoff = policy.cutoff
    maxAgeSeconds = policy.maxConsentAgeDays.map {
      $0.multipliedReportingOverflow(by: 86_400).overflow ? Int64.max : $0 * 86_400
    }
    noticeVersions = policy.noticeVersions.map { Set($0.map { Array($0.utf8) }) }
  }

  /// The state an event leaves the user in, or nil when it is after the cutoff.
  public func state(
    status: ConsentStatus, recordedAt: Timestamp, expiresAt: Timestamp?,
    noticeVersion: UnsafeRawBufferPointer?
  ) -> ConsentState? {
    guard recordedAt <= cutoff else { return nil }
    switch status {
    case .objected: return .objected
    case .withdrawn: return .withdrawn
    case .granted:
      if let expiresAt, expiresAt <= cutoff { return .expired }
      if let maxAgeSeconds, let limit = recordedAt.adding(seconds: maxAgeSeconds), limit < cutoff {
        return .expired
      }
      if let noticeVersions {
        guard let noticeVersion, noticeVersion.count > 0,
          noticeVersions.contains(Array(noticeVersion))
        else { return .noticeOutdated }
      }
      return .valid
    }
  }
}
