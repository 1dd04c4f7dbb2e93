/// The country tables of SPEC §3.1 and §7 "Codes", defined once.
public enum CountryCodes {
  /// Every assigned ISO 3166-1 alpha-2 code.
  public static let assigned: Set<String> = Set(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split(whereSeparator: \.isWhitespace).map(String.init))

  /// Kosovo: user-assigned in ISO, but in common use and valid here.
  public static let kosovo = "XK"

  /// Codes that are not assigned ISO codes but are valid signals, with the territory they
  /// belong to. `EL` and `UK` are the EU's spellings of GR and GB; `FX` is metropolitan
  /// France; `IC` (Canary Islands) and `EA` (Ceuta, Melilla) are parts of Spain; `EU` is the
  /// Union itself.
  public static let aliases: [String: String] = [
    "EL": "GR", "UK": "GB", "FX": "FR", "IC": "ES", "EA": "ES", "EU": "EU",
  ]

  /// The 27 member states.
  public static let memberStates: [String] = """
    AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE
    """.split(separator: " ").map { String($0.trimmingWhitespace()) }

  /// Union territory with its own code (outermost regions, Åland) and the aliases.
  public static let unionTerritory = ["GF", "GP", "MQ", "RE", "YT", "MF", "AX"]
  public static let unionAliases = ["IC", "EA", "FX", "EU", "EL"]

  /// Named protection sets, `all` excepted (it is not a set of codes).
  public static let sets: [String: [String]] = [
    "eu": memberStates + unionTerritory + unionAliases,
    "eea": memberStates + unionTerritory + unionAliases + ["IS", "LI", "NO", "SJ"],
    "uk": ["GB", "UK"],
    "ch": ["CH"],
  ]

  /// Subdivisions of member states that lie outside the Union resolve to their own code.
  public static let subdivisionTerritories: [String: String] = [
    "FR-BL": "BL", "FR-NC": "NC", "FR-PF": "PF", "FR-PM": "PM", "FR-TF": "TF", "FR-WF": "WF",
    "NL-AW": "AW", "NL-CW": "CW", "NL-SX": "SX", "NL-BQ1": "BQ", "NL-BQ2": "BQ",
    "NL-BQ3": "BQ",
  ]

  /// True for a code valid as a signal: assigned, XK, or an alias.
  public static func isValidCode(_ code: String) -> Bool {
    assigned.contains(code) || code == kosovo || aliases[code] != nil
  }
}

extension Substring {
  func trimmingWhitespace() -> Substring {
    var s = self
    while let f = s.first, f.isWhitespace { s.removeFirst() }
    while let l = s.last, l.isWhitespace { s.removeLast() }
    return s
  }
}
