#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What the index holds about one user, packed for the per-record lookup.
public struct UserFacts: Sendable, Equatable {
  /// The deciding event's state (``ConsentState/noConsent`` when there is none).
  public var state: ConsentState
  /// A bad ledger row was read for this user under `--lenient-ledger`.
  public var ledgerError: Bool
  /// The user's jurisdiction tags, resolved against the protection set.
  public var tags: SignalSet
  /// `recorded_at` of the deciding event: for a valid grant, when coverage starts.
  public var decidedAt: Timestamp?

  public static let unknown = UserFacts(
    state: .noConsent, ledgerError: false, tags: SignalSet(), decidedAt: nil)
}

/// A compact map from user id to resolved consent and tag facts, built once per run.
///
/// Ids are compared byte for byte: a hash only picks the slot, because a 64-bit collision
/// among hundreds of millions of ids would let a non-consenting user through. Open
/// addressing with linear probing over a power-of-two slot table; per user it stores the id
/// (in one arena), a 32-bit hash, one flags byte and the deciding event's time, about
/// 35 bytes plus the id and the slot table.
public struct ConsentIndex: Sendable {
  private var arena: [UInt8] = []
  /// Arena offset << 24 | id length.
  private var idRefs: [UInt64] = []
  private var hashes: [UInt32] = []
  /// Bits 0–2 state, 3 ledger error, 4 tag invalid, 5 tag protected, 6 tag valid,
  /// 7 an event was seen.
  private var flags: [UInt8] = []
  private var seconds: [Int64] = []
  private var fractions: [UInt64] = []
  /// Fraction digits 19–36, rare enough to live aside.
  private var subFractions: [Int: UInt64] = [:]
  /// The side file that last mentioned the user, to count distinct users per file.
  private var lastFile: [UInt16] = []
  private var slots: [UInt32] = []
  private var mask = 0

  public init(expectedUsers: Int = 1024) {
    var capacity = 1024
    while capacity < expectedUsers * 2 { capacity <<= 1 }
    slots = [UInt32](repeating: 0, count: capacity)
    mask = capacity - 1
  }

  /// Distinct users.
  public var count: Int { hashes.count }

  /// Releases the spare capacity that growing by doubling left behind: call once loading is
  /// done. The index is then at its smallest, about 35 bytes a user plus the ids.
  public mutating func compact() {
    func exact<T>(_ a: [T]) -> [T] {
      a.withUnsafeBufferPointer { [T]($0) }
    }
    arena = exact(arena)
    idRefs = exact(idRefs)
    hashes = exact(hashes)
    flags = exact(flags)
    seconds = exact(seconds)
    fractions = exact(fractions)
    lastFile = exact(lastFile)
  }

  /// Approximate bytes held, for the memory figure.
  public var memoryBytes: Int {
    arena.capacity + idRefs.capacity * 8 + hashes.capacity * 4 + flags.capacity
      + seconds.capacity * 8 + fractions.capacity * 8 + lastFile.capacity * 2 + slots.count * 4
  }

  @inline(__always)
  static func hash(_ id: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(id.count)
    var i = 0
    let n = id.count
    if let base = id.baseAddress {
      while i + 8 <= n {
        h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        i += 8
      }
      var tail: UInt64 = 0
      var shift: UInt64 = 0
      while i < n {
        tail |= UInt64(id[i]) << shift
        shift += 8
        i += 1
      }
      h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
    }
    h ^= h >> 29
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 32
    return h
  }

  /// The entry of `id`, or nil.
  @inline(__always)
  public func find(_ id: UnsafeRawBufferPointer) -> Int? {
    let h = ConsentIndex.hash(id)
    let tag = UInt32(truncatingIfNeeded: h)
    var slot = Int(truncatingIfNeeded: h >> 32) & mask
    while true {
      let s = slots[slot]
      if s == 0 { return nil }
      let e = Int(s - 1)
      if hashes[e] == tag && idEquals(e, id) { return e }
      slot = (slot + 1) & mask
    }
  }

  @inline(__always)
  private func idEquals(_ e: Int, _ id: UnsafeRawBufferPointer) -> Bool {
    let ref = idRefs[e]
    let length = Int(ref & 0xFF_FFFF)
    guard length == id.count else { return false }
    if length == 0 { return true }
    let offset = Int(ref >> 24)
    return arena.withUnsafeBytes { a in
      memcmp(a.baseAddress! + offset, id.baseAddress!, length) == 0
    }
  }

  /// The entry of `id`, inserted if new. `file` counts distinct users per side file: the
  /// second result is true the first time `file` mentions the user.
  public mutating func insert(_ id: UnsafeRawBufferPointer, file: Int) -> (Int, Bool) {
    let h = ConsentIndex.hash(id)
    let tag = UInt32(truncatingIfNeeded: h)
    var slot = Int(truncatingIfNeeded: h >> 32) & mask
    while true {
      let s = slots[slot]
      if s == 0 { break }
      let e = Int(s - 1)
      if hashes[e] == tag && idEquals(e, id) {
        let first = lastFile[e] != UInt16(truncatingIfNeeded: file + 1)
        lastFile[e] = UInt16(truncatingIfNeeded: file + 1)
        return (e, first)
      }
      slot = (slot + 1) & mask
    }
    let e = hashes.count
    idRefs.append(UInt64(arena.count) << 24 | UInt64(id.count))
    arena.append(contentsOf: id)
    hashes.append(tag)
    flags.append(0)
    seconds.append(0)
    fractions.append(0)
    lastFile.append(UInt16(truncatingIfNeeded: file + 1))
    slots[slot] = UInt32(e + 1)
    if hashes.count * 10 > slots.count * 7 { grow() }
    return (e, true)
  }

  private mutating func grow() {
    let capacity = slots.count * 2
    var fresh = [UInt32](repeating: 0, count: capacity)
    let newMask = capacity - 1
    for e in 0..<hashes.count {
      let ref = idRefs[e]
      let length = Int(ref & 0xFF_FFFF)
      let offset = Int(ref >> 24)
      let h = arena.withUnsafeBytes {
        ConsentIndex.hash(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length)]))
      }
      var slot = Int(truncatingIfNeeded: h >> 32) & newMask
      while fresh[slot] != 0 { slot = (slot + 1) & newMask }
      fresh[slot] = UInt32(e + 1)
    }
    slots = fresh
    mask = newMask
  }

  /// Offers an event: it becomes the deciding one if it is later than the current one, or
  /// at the same time and more restrictive.
  public mutating func offer(_ e: Int, state: ConsentState, at time: Timestamp) {
    let f = flags[e]
    if f & 0x80 != 0 {
      let current = Timestamp(
        seconds: seconds[e], fraction: fractions[e], subFraction: subFraction(e))
      let currentState = ConsentState(rawValue: f & 7)!
      if time < current || (time == current && state <= currentState) { return }
    }
    flags[e] = (f & 0x78) | 0x80 | state.rawValue
    seconds[e] = time.seconds
    fractions[e] = time.fraction
    if time.subFraction != 0 {
      subFractions[e] = time.subFraction
    } else if !subFractions.isEmpty {
      subFractions[e] = nil
    }
  }

  /// Fraction digits 19–36 of the deciding time. The dictionary is skipped (this is on the
  /// per-record path) when no ledger time had that many digits.
  @inline(__always)
  private func subFraction(_ e: Int) -> UInt64 {
    subFractions.isEmpty ? 0 : subFractions[e] ?? 0
  }

  public mutating func markLedgerError(_ e: Int) {
    flags[e] |= 0x08
  }

  public mutating func addTag(_ e: Int, _ signal: CountrySignal) {
    switch signal {
    case .none: break
    case .invalid: flags[e] |= 0x10
    case .protected: flags[e] |= 0x60
    case .notProtected: flags[e] |= 0x40
    }
  }

  /// The facts about entry `e`.
  @inline(__always)
  public func facts(_ e: Int) -> UserFacts {
    let f = flags[e]
    var tags = SignalSet()
    tags.hasInvalid = f & 0x10 != 0
    tags.hasProtected = f & 0x20 != 0
    tags.hasValid = f & 0x40 != 0
    let decided = f & 0x80 != 0
    return UserFacts(
      state: decided ? ConsentState(rawValue: f & 7)! : .noConsent,
      ledgerError: f & 0x08 != 0, tags: tags,
      decidedAt: decided
        ? Timestamp(
          seconds: seconds[e], fraction: fractions[e], subFraction: subFraction(e))
        : nil)
  }

  /// The facts about `id`; a user the index does not know has no consent and no tags.
  @inline(__always)
  public func facts(for id: UnsafeRawBufferPointer) -> UserFacts {
    guard let e = find(id) else { return .unknown }
    return facts(e)
  }
}
