/// The jurisdiction a record was counted under, once it passed rows 1–5.
public enum JurisdictionCount: Int, Sendable, CaseIterable {
  case protected, notProtected, unknown, invalid

  public var key: String {
    switch self {
    case .protected: "protected"
    case .notProtected: "not_protected"
    case .unknown: "unknown"
    case .invalid: "invalid"
    }
  }
}

/// The outcome for one record.
public struct Verdict: Sendable, Equatable {
  public var reason: Reason
  /// Nil when the record stopped at rows 1–5.
  public var jurisdiction: JurisdictionCount?
  /// What becomes of the record: its reason's, but `third_party_data` as `--third-party`
  /// says.
  public var disposition: Disposition

  public init(
    reason: Reason, jurisdiction: JurisdictionCount? = nil, disposition: Disposition? = nil
  ) {
    self.reason = reason
    self.jurisdiction = jurisdiction
    self.disposition = disposition ?? reason.disposition
  }
}
