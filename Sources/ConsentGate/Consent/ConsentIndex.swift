// Over 300 lines on purpose: one data structure (slot table and entry arena) whose methods
// share private byte offsets; split, they would need those internals widened. The mapped
// index file of SPEC §9 is MappedIndex; both share the batched probe of BatchedLookup.swift.
import CScanKernels

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
  /// `recorded_at` of the deciding event (for a valid grant, when coverage starts) as the
  /// index packs it, 0 for none: read it with ``ConsentIndex/decidedAt(_:)``. Packed, so
  /// that the facts stay a plain value (no reference count) on the per-record path.
  let decidedWord: UInt64
  /// The deciding grant's birth date and parental consent (read under `--children check`).
  public var child = ChildFacts.none

  public static let unknown = UserFacts(
    state: .noConsent, ledgerError: false, tags: SignalSet(), decidedWord: 0)
}

/// A compact map from user id to resolved consent and tag facts, built once per run.
///
/// Ids are compared byte for byte: a hash only picks the slot, because a 64-bit collision
/// among hundreds of millions of ids would let a non-consenting user through.
///
/// The layout is chosen for cache misses, which are what a lookup in a table of millions of
/// users costs:
/// - a slot table of 64-bit words, open addressing with linear probing, each word holding a
///   24-bit hash tag and the user's entry offset, so an unknown id is rejected after reading
///   one cache line of slots;
/// - one contiguous entry per user in an arena, 4-byte aligned: the deciding time (8 bytes,
///   packed), a flags byte, the age schedules of its protected tags, the last side file that
///   named the user, the id length, the deciding grant's ``ChildFacts`` and the id itself. A known user costs one more line, which holds everything the decision needs.
///
/// About 34 bytes a user plus the id bytes (13 of them the slot table at 10 million users).
/// ``find(batch:into:)`` overlaps the misses of many lookups; the record pipeline uses it.
public struct ConsentIndex: Sendable, ProbedTable {
  /// Entries, back to back. Entry offsets are in 4-byte units, so 40 bits address 4 TiB.
  private var arena: PageBuffer
  /// Tag << 40 | (entry unit offset + 1); 0 is an empty slot.
  private var slots: PageBuffer
  private var mask = 0
  private var users = 0
  /// Deciding times that do not pack into 64 bits (sub-microsecond digits, or years far
  /// outside 0000–9999 from integer Unix seconds); the entry holds their position here.
  private var exactTimes: [Timestamp] = []

  /// An entry's position in the arena: what ``insert(_:file:)`` and ``find(_:)`` return.
  public typealias Entry = Int

  private static let headerBytes = 20
  private static let tagShift: UInt64 = 40
  private static let offsetMask: UInt64 = (1 << 40) - 1

  // Entry header fields, by byte offset.
  private static let timeAt = 0
  private static let flagsAt = 8
  private static let agesAt = 9
  private static let fileAt = 10
  private static let lengthAt = 12
  private static let childAt = 16

  public init(expectedUsers: Int = 1024) {
    var capacity = 1024
    while capacity * 4 < expectedUsers * 5 { capacity <<= 1 }
    slots = PageBuffer(capacity: capacity * 8)
    mask = capacity - 1
    arena = PageBuffer(capacity: 1 << 16)
  }

  /// Copy on write: the tables are shared between copies until one of them changes.
  private mutating func makeUnique() {
    if !isKnownUniquelyReferenced(&arena) { arena = arena.copy() }
    if !isKnownUniquelyReferenced(&slots) { slots = slots.copy() }
  }

  @inline(__always)
  private var slotWords: UnsafeMutableBufferPointer<UInt64> {
    UnsafeMutableBufferPointer(
      start: slots.base.assumingMemoryBound(to: UInt64.self), count: mask + 1)
  }

  @inline(__always)
  private var arenaBytes: UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(start: arena.base, count: arena.count)
  }

  /// Distinct users.
  public var count: Int { users }

  /// Releases the spare capacity that growing by doubling left behind: call once loading is
  /// done.
  public mutating func compact() {
    makeUnique()
    arena.shrink()
    exactTimes = exactTimes.withUnsafeBufferPointer { [Timestamp]($0) }
  }

  /// Approximate bytes held, for the memory figure.
  public var memoryBytes: Int {
    arena.capacity + slots.capacity + exactTimes.capacity * MemoryLayout<Timestamp>.stride
  }

  @inline(__always)
  public static func hash(_ id: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(id.count)
    var i = 0
    let n = id.count
    if let base = id.baseAddress {
      while i + 8 <= n {
        h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        i += 8
      }
      if i < n {
        // The last 1–7 bytes, read as one overlapping word when the id is long enough.
        var tail: UInt64
        if n >= 8 {
          tail =
            base.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) >> UInt64((8 - (n - i)) * 8)
        } else {
          tail = 0
          var shift: UInt64 = 0
          while i < n {
            tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
          }
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
      }
    }
    h ^= h >> 29
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 32
    return h
  }

  @inline(__always)
  func home(_ h: UInt64) -> Int { Int(truncatingIfNeeded: h >> 24) & mask }

  @inline(__always)
  private static func tag(_ h: UInt64) -> UInt64 { (h & 0xFF_FFFF) << tagShift }

  // MARK: Lookup

  /// The entry of `id`, or nil.
  @inline(__always)
  public func find(_ id: UnsafeRawBufferPointer) -> Entry? {
    find(id, hash: ConsentIndex.hash(id))
  }

  @inline(__always)
  private func find(_ id: UnsafeRawBufferPointer, hash h: UInt64) -> Entry? {
    ConsentIndex.probe(
      UnsafeBufferPointer(slotWords), UnsafeRawBufferPointer(arenaBytes), mask, id,
      ConsentIndex.tag(h), home(h))
  }

  @inline(__always)
  private static func probe(
    _ s: UnsafeBufferPointer<UInt64>, _ a: UnsafeRawBufferPointer, _ mask: Int,
    _ id: UnsafeRawBufferPointer, _ tag: UInt64, _ start: Int
  ) -> Entry? {
    var slot = start
    while true {
      let word = s[slot]
      if word == 0 { return nil }
      if word & ~offsetMask == tag {
        let e = Int(truncatingIfNeeded: (word & offsetMask) - 1) << 2
        if idEquals(a, e, id) { return e }
      }
      slot = (slot + 1) & mask
    }
  }

  @inline(__always)
  private static func idEquals(
    _ a: UnsafeRawBufferPointer, _ e: Entry, _ id: UnsafeRawBufferPointer
  ) -> Bool {
    let base = a.baseAddress! + e
    let length = Int(base.loadUnaligned(fromByteOffset: lengthAt, as: UInt32.self))
    guard length == id.count else { return false }
    // Ids are short: compared inline, a libc call would cost more.
    return bytesEqual(base + headerBytes, id.baseAddress!, count: length)
  }

  /// Looks up many ids at once: `results[k]` becomes the entry of `ids[k]`, or nil
  /// (``findBatched(_:ids:into:)``, which overlaps their memory misses).
  public func find(
    batch ids: UnsafeBufferPointer<UnsafeRawBufferPointer>,
    into results: UnsafeMutableBufferPointer<Entry?>
  ) {
    findBatched(self, ids: ids, into: results)
  }

  /// Measured best at 8 on the 2-core machine (10 M users in memory).
  static let batchWidth = 8

  @inline(__always)
  func prefetchSlot(_ slot: Int) { cg_prefetch(slots.base + slot * 8) }

  @inline(__always)
  func firstCandidate(_ h: UInt64, from start: Int) -> Int {
    let s = UnsafeBufferPointer(slotWords)
    let tag = ConsentIndex.tag(h)
    var slot = start
    while true {
      let word = s[slot]
      if word == 0 { return slot }
      if word & ~ConsentIndex.offsetMask == tag {
        cg_prefetch(
          arena.base + (Int(truncatingIfNeeded: (word & ConsentIndex.offsetMask) - 1) << 2))
        return slot
      }
      slot = (slot + 1) & mask
    }
  }

  @inline(__always)
  func probe(_ id: UnsafeRawBufferPointer, _ h: UInt64, from slot: Int) -> Int? {
    ConsentIndex.probe(
      UnsafeBufferPointer(slotWords), UnsafeRawBufferPointer(arenaBytes), mask, id,
      ConsentIndex.tag(h), slot)
  }

  // MARK: Loading

  /// Requests the slot where `id` would be from memory, ahead of an ``insert(_:file:)``.
  @inline(__always)
  public func prefetch(_ id: UnsafeRawBufferPointer) {
    cg_prefetch(slots.base + home(ConsentIndex.hash(id)) * 8)
  }

  /// The entry of `id`, inserted if new. `file` counts distinct users per side file: the
  /// second result is true the first time `file` mentions the user.
  public mutating func insert(_ id: UnsafeRawBufferPointer, file: Int) -> (Entry, Bool) {
    makeUnique()
    let h = ConsentIndex.hash(id)
    let fileTag = UInt16(truncatingIfNeeded: file + 1)
    if let e = find(id, hash: h) {
      let a = arenaBytes
      let previous = a.loadUnaligned(fromByteOffset: e + ConsentIndex.fileAt, as: UInt16.self)
      a.storeBytes(of: fileTag, toByteOffset: e + ConsentIndex.fileAt, as: UInt16.self)
      return (e, previous != fileTag)
    }
    precondition(id.count <= Int(UInt32.max), "user id longer than 4 GiB")
    let e = arena.count
    precondition(e >> 2 < Int(ConsentIndex.offsetMask), "consent index beyond 4 TiB")
    let size = (ConsentIndex.headerBytes + id.count + 3) & ~3
    arena.reserve(e + size)
    arena.count = e + size
    // Mapped pages start zeroed and the arena only grows, so the header needs no clearing.
    let a = arenaBytes
    a.storeBytes(of: fileTag, toByteOffset: e + ConsentIndex.fileAt, as: UInt16.self)
    a.storeBytes(of: UInt32(id.count), toByteOffset: e + ConsentIndex.lengthAt, as: UInt32.self)
    if id.count > 0 {
      (a.baseAddress! + e + ConsentIndex.headerBytes).copyMemory(
        from: id.baseAddress!, byteCount: id.count)
    }
    users += 1
    if users * 5 > (mask + 1) * 4 {
      grow()
    } else {
      place(e, hash: h)
    }
    return (e, true)
  }

  private func place(_ e: Entry, hash h: UInt64) {
    var slot = home(h)
    let s = slotWords
    while s[slot] != 0 { slot = (slot + 1) & mask }
    s[slot] = ConsentIndex.tag(h) | UInt64(e >> 2 + 1)
  }

  /// Doubles the slot table, rehashing the ids in arena order: a sequential read, not one
  /// random miss per user.
  private mutating func grow() {
    let capacity = (mask + 1) * 2
    slots = PageBuffer(capacity: capacity * 8)
    mask = capacity - 1
    let a = UnsafeRawBufferPointer(arenaBytes)
    var e = 0
    while e < a.count {
      let length = Int(a.loadUnaligned(fromByteOffset: e + ConsentIndex.lengthAt, as: UInt32.self))
      let h = ConsentIndex.hash(
        UnsafeRawBufferPointer(start: a.baseAddress! + e + ConsentIndex.headerBytes, count: length))
      place(e, hash: h)
      e += (ConsentIndex.headerBytes + length + 3) & ~3
    }
  }

  // MARK: Facts

  /// Flag bits: 0–2 state, 3 ledger error, 4 tag invalid, 5 tag protected, 6 tag valid,
  /// 7 an event was seen.
  @inline(__always)
  private func flags(_ e: Entry) -> UInt8 {
    arena.base.load(fromByteOffset: e + ConsentIndex.flagsAt, as: UInt8.self)
  }

  private mutating func setFlags(_ e: Entry, _ f: UInt8) {
    arena.base.storeBytes(of: f, toByteOffset: e + ConsentIndex.flagsAt, as: UInt8.self)
  }

  @inline(__always)
  private func time(_ e: Entry) -> Timestamp {
    time(packed: arena.base.loadUnaligned(fromByteOffset: e + ConsentIndex.timeAt, as: UInt64.self))
  }

  /// `recorded_at` of the event that decided `facts`, nil when none did.
  public func decidedAt(_ facts: UserFacts) -> Timestamp? {
    facts.decidedWord == 0 ? nil : time(packed: facts.decidedWord)
  }

  private func time(packed: UInt64) -> Timestamp {
    if packed & PackedTime.exactBit != 0 { return exactTimes[PackedTime.exactPlace(packed)] }
    return PackedTime.unpack(packed)
  }

  /// Stores the deciding time, packed where it fits (``PackedTime``).
  private mutating func setTime(_ e: Entry, _ t: Timestamp, replacing previous: UInt64?) {
    let packed: UInt64
    if let word = PackedTime.pack(t) {
      packed = word
    } else if let previous, previous & PackedTime.exactBit != 0 {
      exactTimes[PackedTime.exactPlace(previous)] = t
      packed = previous
    } else {
      packed = PackedTime.exactBit | UInt64(exactTimes.count)
      exactTimes.append(t)
    }
    arena.base.storeBytes(of: packed, toByteOffset: e + ConsentIndex.timeAt, as: UInt64.self)
  }

  /// Offers an event: it becomes the deciding one if it is later than the current one, or
  /// at the same time and more restrictive; of two valid grants at one instant, the one the
  /// children rule judges worse (``ChildFacts/rank(unknownAge:)``).
  public mutating func offer(
    _ e: Entry, state: ConsentState, at time: Timestamp, child: ChildFacts = .none,
    unknownAge: UnknownAgeRule = .child
  ) {
    makeUnique()
    let f = flags(e)
    var previous: UInt64?
    if f & 0x80 != 0 {
      let current = self.time(e)
      let currentState = ConsentState(rawValue: f & 7)!
      if time < current || (time == current && state < currentState) { return }
      if time == current && state == currentState {
        let held = ChildFacts(
          word: arena.base.loadUnaligned(
            fromByteOffset: e + ConsentIndex.childAt, as: UInt32.self))
        guard state == .valid,
          child.rank(unknownAge: unknownAge) > held.rank(unknownAge: unknownAge)
        else { return }
      }
      previous = arena.base.loadUnaligned(
        fromByteOffset: e + ConsentIndex.timeAt, as: UInt64.self)
    }
    setFlags(e, (f & 0x78) | 0x80 | state.rawValue)
    setTime(e, time, replacing: previous)
    arena.base.storeBytes(of: child.word, toByteOffset: e + ConsentIndex.childAt, as: UInt32.self)
  }

  public mutating func markLedgerError(_ e: Entry) {
    makeUnique()
    setFlags(e, flags(e) | 0x08)
  }

  /// Adds a tag signal; `ageBit` is a protected tag's age schedule under `--children check`.
  public mutating func addTag(_ e: Entry, _ signal: CountrySignal, ageBit: UInt8 = 0) {
    makeUnique()
    switch signal {
    case .none: break
    case .invalid: setFlags(e, flags(e) | 0x10)
    case .protected:
      setFlags(e, flags(e) | 0x60)
      let ages = arena.base.load(fromByteOffset: e + ConsentIndex.agesAt, as: UInt8.self)
      arena.base.storeBytes(
        of: ages | ageBit, toByteOffset: e + ConsentIndex.agesAt, as: UInt8.self)
    case .notProtected: setFlags(e, flags(e) | 0x40)
    }
  }

  /// The facts about entry `e`.
  @inline(__always)
  public func facts(_ e: Entry) -> UserFacts {
    let f = flags(e)
    var tags = SignalSet()
    tags.hasInvalid = f & 0x10 != 0
    tags.hasProtected = f & 0x20 != 0
    tags.hasValid = f & 0x40 != 0
    tags.ages = arena.base.load(fromByteOffset: e + ConsentIndex.agesAt, as: UInt8.self)
    let decided = f & 0x80 != 0
    return UserFacts(
      state: decided ? ConsentState(rawValue: f & 7)! : .noConsent,
      ledgerError: f & 0x08 != 0, tags: tags,
      decidedWord: decided
        ? arena.base.loadUnaligned(fromByteOffset: e + ConsentIndex.timeAt, as: UInt64.self) : 0,
      child: ChildFacts(
        word: arena.base.loadUnaligned(fromByteOffset: e + ConsentIndex.childAt, as: UInt32.self)))
  }

  /// The facts about `id`; a user the index does not know has no consent and no tags.
  @inline(__always)
  public func facts(for id: UnsafeRawBufferPointer) -> UserFacts {
    guard let e = find(id) else { return .unknown }
    return facts(e)
  }
}
