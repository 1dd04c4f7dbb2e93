/// What one country signal says (SPEC §3.1).
public enum CountrySignal: Sendable, Equatable {
  /// Absent, `null` or empty after trimming: no signal at all.
  case none
  /// Not a valid code, or not a string.
  case invalid
  case protected
  case notProtected
}

/// The signals gathered for one record: the user's tags and the record's own values.
public struct SignalSet: Sendable, Equatable {
  public var hasInvalid = false
  public var hasProtected = false
  public var hasValid = false
  /// Under `--children check`: the age schedules of the protected codes among the signals
  /// (``AgeOfConsent/requiredAge(bits:day:)``); 0 otherwise.
  public var ages: UInt8 = 0

  public init() {}

  @inline(__always)
  public mutating func add(_ signal: CountrySignal) {
    switch signal {
    case .none: break
    case .invalid: hasInvalid = true
    case .protected:
      hasProtected = true
      hasValid = true
    case .notProtected: hasValid = true
    }
  }

  public mutating func formUnion(_ other: SignalSet) {
    hasInvalid = hasInvalid || other.hasInvalid
    hasProtected = hasProtected || other.hasProtected
    hasValid = hasValid || other.hasValid
    ages |= other.ages
  }
}

/// The jurisdiction a record resolves to, before `--unknown-jurisdiction` applies.
public enum Jurisdiction: Sendable, Equatable {
  case invalid, protected, notProtected, unknown

  /// Resolution in SPEC order: invalid, then protected, then any valid signal, then none.
  public init(_ signals: SignalSet) {
    if signals.hasInvalid {
      self = .invalid
    } else if signals.hasProtected {
      self = .protected
    } else if signals.hasValid {
      self = .notProtected
    } else {
      self = .unknown
    }
  }
}

/// The protected territory chosen with `--protect`: classifies country codes as bytes.
///
/// Codes are kept in a 26×26 table indexed by their two letters, so classifying a signal
/// costs a few comparisons and no allocation.
public struct ProtectionSet: Sendable, Equatable {
  /// `all`: every record is protected, whatever its signals.
  public let coversEveryone: Bool
  /// The normalised `--protect` items (set names in lower case, codes in upper case), sorted.
  public let items: [String]
  private var protectedCodes: [Bool]
  private let validCodes: [Bool]
  private let assignedCodes: [Bool]
  private let canonical: [UInt16]

  public enum ParseError: Error, Equatable, Sendable {
    case unknownItem(String)
    case empty
  }

  /// Parses `--protect` items: set names (`eu`, `eea`, `uk`, `ch`, `all`), codes or aliases,
  /// case-insensitive. A set name wins over a code of the same spelling.
  public init(items rawItems: [String]) throws(ParseError) {
    var valid = [Bool](repeating: false, count: 676)
    var assigned = [Bool](repeating: false, count: 676)
    var canonical = [UInt16](repeating: 0, count: 676)
    for i in 0..<676 { canonical[i] = UInt16(i) }
    for code in CountryCodes.assigned {
      let k = Int(ProtectionSet.key(code)!)
      valid[k] = true
      assigned[k] = true
    }
    valid[Int(ProtectionSet.key(CountryCodes.kosovo)!)] = true
    for (alias, target) in CountryCodes.aliases {
      let k = Int(ProtectionSet.key(alias)!)
      valid[k] = true
      canonical[k] = ProtectionSet.key(target)!
    }
    var protected = [Bool](repeating: false, count: 676)
    var all = false
    var normalized: Set<String> = []
    let cleaned = rawItems.map { String(Substring($0).trimmingWhitespace()) }.filter {
      !$0.isEmpty
    }
    guard !cleaned.isEmpty else { throw .empty }
    for item in cleaned {
      let lower = item.lowercased()
      if lower == "all" {
        all = true
        normalized.insert(lower)
      } else if let codes = CountryCodes.sets[lower] {
        normalized.insert(lower)
        for code in codes { protected[Int(ProtectionSet.key(code)!)] = true }
      } else {
        let upper = item.uppercased()
        guard let k = ProtectionSet.key(upper), valid[Int(k)] else {
          throw .unknownItem(item)
        }
        normalized.insert(upper)
        protected[Int(k)] = true
        // Listing EL, UK or FX protects the country they name as well.
        if ["EL", "UK", "FX"].contains(upper) { protected[Int(canonical[Int(k)])] = true }
      }
    }
    coversEveryone = all
    items = normalized.sorted()
    protectedCodes = protected
    validCodes = valid
    assignedCodes = assigned
    self.canonical = canonical
  }

  /// Index of a two-letter upper-case code in the 26×26 tables.
  static func key(_ code: String) -> UInt16? {
    let u = Array(code.utf8)
    guard u.count == 2 else { return nil }
    return letterKey(u[0], u[1])
  }

  @inline(__always)
  static func letterKey(_ a: UInt8, _ b: UInt8) -> UInt16? {
    let x = a & 0xDF
    let y = b & 0xDF
    guard x >= 65 && x <= 90 && y >= 65 && y <= 90 else { return nil }
    return UInt16(x - 65) * 26 + UInt16(y - 65)
  }

  @inline(__always)
  private func isProtected(_ k: UInt16) -> Bool {
    protectedCodes[Int(k)] || protectedCodes[Int(canonical[Int(k)])]
  }

  /// Classifies one country value given as text (already unescaped).
  public func classify(_ text: UnsafeRawBufferPointer) -> CountrySignal {
    var start = 0
    var end = text.count
    while start < end && (text[start] == 0x20 || text[start] == 0x09) { start += 1 }
    while end > start && (text[end - 1] == 0x20 || text[end - 1] == 0x09) { end -= 1 }
    let n = end - start
    if n == 0 { return .none }
    guard n >= 2, let k = ProtectionSet.letterKey(text[start], text[start + 1]) else {
      return .invalid
    }
    if n == 2 {
      guard validCodes[Int(k)] else { return .invalid }
      return isProtected(k) ? .protected : .notProtected
    }
    // A subdivision: CC-XXX, CC an assigned code, then 1–3 ASCII letters or digits.
    guard assignedCodes[Int(k)], n >= 4, n <= 6, text[start + 2] == UInt8(ascii: "-") else {
      return .invalid
    }
    for i in (start + 3)..<end {
      let c = text[i]
      let alnum = (c >= 0x30 && c <= 0x39) || ((c & 0xDF) >= 65 && (c & 0xDF) <= 90)
      guard alnum else { return .invalid }
    }
    if let own = territory(ofSubdivision: text, start, end) {
      return isProtected(own) ? .protected : .notProtected
    }
    return isProtected(k) ? .protected : .notProtected
  }

  /// The age-schedule bit (``SignalSet/ages``) of a value ``classify(_:)`` found protected:
  /// a code's state's, a subdivision's country's, the default for a subdivision that is a
  /// territory of its own (SPEC §13.2).
  public func ageBit(_ text: UnsafeRawBufferPointer) -> UInt8 {
    var start = 0
    var end = text.count
    while start < end && (text[start] == 0x20 || text[start] == 0x09) { start += 1 }
    while end > start && (text[end - 1] == 0x20 || text[end - 1] == 0x09) { end -= 1 }
    guard end - start >= 2, let k = ProtectionSet.letterKey(text[start], text[start + 1]) else {
      return 1
    }
    if end - start > 2 && territory(ofSubdivision: text, start, end) != nil { return 1 }
    return 1 << AgeOfConsent.scheduleOfKey[Int(k)]
  }

  public func ageBit(_ text: String) -> UInt8 {
    var s = text
    return s.withUTF8 { ageBit(UnsafeRawBufferPointer($0)) }
  }

  /// The own code of a member-state subdivision outside the Union (FR-PF → PF), if it is one.
  private func territory(ofSubdivision text: UnsafeRawBufferPointer, _ start: Int, _ end: Int)
    -> UInt16?
  {
    let n = end - start
    guard n == 5 || n == 6 else { return nil }
    @inline(__always) func upper(_ i: Int) -> UInt8 {
      let c = text[start + i]
      return (c >= 97 && c <= 122) ? c - 32 : c
    }
    for (subdivision, own) in ProtectionSet.subdivisionTerritories
    where subdivision.count == n && (0..<n).allSatisfy({ upper($0) == subdivision[$0] }) {
      return own
    }
    return nil
  }

  /// ``CountryCodes/subdivisionTerritories`` as bytes, for allocation-free matching.
  private static let subdivisionTerritories: [([UInt8], UInt16)] = CountryCodes
    .subdivisionTerritories.map { (Array($0.key.utf8), key($0.value)!) }

  public func classify(_ text: String) -> CountrySignal {
    var s = text
    return s.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
  }
}
