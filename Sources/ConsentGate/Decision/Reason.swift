/// What happens to a record.
public enum Disposition: String, Sendable {
  /// Written to the training corpus, byte for byte.
  case keep
  /// Written nowhere (data minimisation).
  case drop
  /// Written to the review file with its reason.
  case quarantine
}

/// Why a record was kept, dropped or quarantined: one code per row of SPEC §3.3, in table
/// order. This list is the only definition of the codes; the report, the CLI help and the
/// tests all read it.
public enum Reason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  case recordTooLarge
  case invalidUTF8
  case malformedJSON
  case duplicateKey
  case missingUserID
  case invalidUserID
  case invalidCountry
  case unknownJurisdiction
  case consentLedgerError
  case objected
  case noConsent
  case withdrawn
  case consentExpired
  case noticeOutdated
  /// A child's grant without parental consent (SPEC §13.2, `--children check`).
  case childConsentInvalid
  case missingTimestamp
  case predatesConsent
  /// The record carries another person who may not be kept (SPEC §13.1).
  case thirdPartyData
  case consented
  case notProtected

  /// The code as the report and quarantine lines spell it.
  public var code: String {
    switch self {
    case .recordTooLarge: "record_too_large"
    case .invalidUTF8: "invalid_utf8"
    case .malformedJSON: "malformed_json"
    case .duplicateKey: "duplicate_key"
    case .missingUserID: "missing_user_id"
    case .invalidUserID: "invalid_user_id"
    case .invalidCountry: "invalid_country"
    case .unknownJurisdiction: "unknown_jurisdiction"
    case .consentLedgerError: "consent_ledger_error"
    case .objected: "objected"
    case .noConsent: "no_consent"
    case .withdrawn: "withdrawn"
    case .consentExpired: "consent_expired"
    case .noticeOutdated: "notice_outdated"
    case .childConsentInvalid: "child_consent_invalid"
    case .missingTimestamp: "missing_timestamp"
    case .predatesConsent: "predates_consent"
    case .thirdPartyData: "third_party_data"
    case .consented: "consented"
    case .notProtected: "not_protected"
    }
  }

  public var description: String { code }

  public var disposition: Disposition {
    switch self {
    case .recordTooLarge, .invalidUTF8, .malformedJSON, .duplicateKey, .missingUserID,
      .invalidUserID, .invalidCountry, .unknownJurisdiction, .consentLedgerError,
      .missingTimestamp, .thirdPartyData:
      .quarantine
    case .objected, .noConsent, .withdrawn, .consentExpired, .noticeOutdated,
      .childConsentInvalid, .predatesConsent:
      .drop
    case .consented, .notProtected:
      .keep
    }
  }

  /// The reason for a protected user whose consent is not valid (row 9).
  init?(invalidConsent state: ConsentState) {
    switch state {
    case .noConsent: self = .noConsent
    case .withdrawn: self = .withdrawn
    case .expired: self = .consentExpired
    case .noticeOutdated: self = .noticeOutdated
    case .objected: self = .objected
    case .valid: return nil
    }
  }
}
