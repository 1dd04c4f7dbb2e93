// Over 300 lines on purpose: one single-pass scanner whose inlined helpers share the
// pointer-token tables held in this class; split, the hot loop would cross file-private
// boundaries that the optimiser then cannot see through.
import CScanKernels

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a JSON Pointer resolved to in one record.
public struct FieldValue: Sendable, Equatable {
  public enum Kind: UInt8, Sendable {
    /// A missing member, an index out of range, or a path through a scalar.
    case absent
    case null
    /// `start..<end` is the string's content between the quotes, still escaped when
    /// `escaped` is true.
    case string
    /// `start..<end` is the literal, sign included; no fraction, no exponent.
    case integer
    /// A fractional or exponent number, a boolean, an object or an array.
    case other
  }

  public var kind: Kind = .absent
  public var start: Int = 0
  public var end: Int = 0
  public var escaped: Bool = false
  /// A key on the pointer's path occurs more than once in its object.
  public var duplicate: Bool = false
}

/// A strict, one-pass validator for one JSON object (RFC 8259) that extracts the values at a
/// fixed set of JSON Pointers as it goes, in the spirit of simdjson's On-Demand API: no tree
/// is built and nothing is allocated per record.
///
/// Call ``scan(_:)`` with the record's bytes. It returns true only for exactly one object
/// with optional surrounding whitespace, nesting no deeper than ``maxDepth``, that is also
/// valid UTF-8: string contents are validated as they are scanned, and a non-ASCII byte
/// anywhere else is a syntax error. On false, ``UTF8Validation`` tells whether the record
/// was invalid UTF-8 or invalid JSON. On success ``field(_:)`` gives each pointer's value,
/// as ranges into the record.
///
/// Nesting is tracked on an explicit stack, so a hostile line cannot overflow the call stack.
/// For each open container the scanner keeps the set of pointers whose path leads into it
/// (`active`) and which of their keys it has seen (`seen`), which is how a duplicate key on a
/// consulted path is found and how a nested key with the same name as a top-level one is
/// told apart from it.
///
/// Owns fixed-size stacks, so it is a class; use one per thread.
public final class RecordScanner {
  public static let maxDepth = 512
  public static let maxPointers = 64

  public let pointers: [JSONPointer]
  private let tokenCounts: [Int]
  /// Every pointer's tokens in one flat allocation, so that matching a key touches no array
  /// of arrays (and no reference counts): token `level` of pointer `p` is at
  /// `tokenBytes + tokenOffsets[p * stride + level]`, `tokenLengths[…]` long, and names
  /// array element `tokenIndices[…]` (or -1).
  private let tokenBytes: UnsafeMutablePointer<UInt8>
  private let tokenOffsets: UnsafeMutablePointer<Int>
  private let tokenLengths: UnsafeMutablePointer<Int>
  private let tokenIndices: UnsafeMutablePointer<Int>
  private let tokenStride: Int
  /// For each level and key length (63 standing for 63 and longer): the pointers whose token
  /// at that level has that length. A key no pointer can match, the common case, is passed
  /// over with one test instead of a loop of length compares the CPU cannot predict.
  private let lengthMasks: UnsafeMutablePointer<UInt64>
  private let fields: UnsafeMutablePointer<FieldValue>
  private let containerIsObject: UnsafeMutablePointer<Bool>
  private let active: UnsafeMutablePointer<UInt64>
  private let seen: UnsafeMutablePointer<UInt64>
  private let elementIndex: UnsafeMutablePointer<Int>
  /// One thread's scratch (a scanner is never shared): exclusivity check off.
  @exclusivity(unchecked) private var keyScratch: [UInt8] = []
  private let rootTargets: UInt64
  private let rootEnters: UInt64
  /// Pointers with a `*` token: they can match many values, each appended to ``matches``.
  private let multiMask: UInt64
  /// Every value of a wildcard pointer in the last scan, in document order: pointer number
  /// and value. Reserved once, so a record with a few matches allocates nothing.
  @exclusivity(unchecked) public private(set) var matches: [(pointer: Int, value: FieldValue)] =
    []
  /// When set, the ranges of all top-level keys are collected into ``topLevelKeys`` (for
  /// side files, where any duplicate key makes a row bad). Off on the record hot path.
  public var collectsTopLevelKeys = false
  /// Top-level keys of the last scan: content ranges and whether they hold escapes.
  public private(set) var topLevelKeys: [(start: Int, end: Int, escaped: Bool)] = []

  public init(pointers: [JSONPointer]) {
    precondition(pointers.count <= RecordScanner.maxPointers, "too many JSON pointers")
    self.pointers = pointers
    tokenCounts = pointers.map(\.tokens.count)
    let stride = max(1, pointers.map(\.tokens.count).max() ?? 1)
    tokenStride = stride
    let totalBytes = pointers.reduce(0) { $0 + $1.tokens.reduce(0) { $0 + $1.count } }
    tokenBytes = .allocate(capacity: max(1, totalBytes))
    tokenOffsets = .allocate(capacity: max(1, pointers.count) * stride)
    tokenLengths = .allocate(capacity: max(1, pointers.count) * stride)
    tokenIndices = .allocate(capacity: max(1, pointers.count) * stride)
    var offset = 0
    for (p, pointer) in pointers.enumerated() {
      for (level, token) in pointer.tokens.enumerated() {
        let slot = p * stride + level
        tokenOffsets[slot] = offset
        // A wildcard token names no key: a length no key has.
        tokenLengths[slot] = pointer.arrayIndices[level] == JSONPointer.wildcard ? -1 : token.count
        tokenIndices[slot] = pointer.arrayIndices[level]
        for b in token {
          tokenBytes[offset] = b
          offset += 1
        }
      }
    }
    lengthMasks = .allocate(capacity: stride * 64)
    lengthMasks.initialize(repeating: 0, count: stride * 64)
    for (p, pointer) in pointers.enumerated() {
      for (level, token) in pointer.tokens.enumerated()
      where pointer.arrayIndices[level] != JSONPointer.wildcard {
        lengthMasks[level * 64 + min(token.count, 63)] |= 1 << UInt64(p)
      }
    }
    fields = .allocate(capacity: max(1, pointers.count))
    fields.initialize(repeating: FieldValue(), count: max(1, pointers.count))
    let stack = RecordScanner.maxDepth + 2
    containerIsObject = .allocate(capacity: stack)
    containerIsObject.initialize(repeating: false, count: stack)
    active = .allocate(capacity: stack)
    active.initialize(repeating: 0, count: stack)
    seen = .allocate(capacity: stack)
    seen.initialize(repeating: 0, count: stack)
    elementIndex = .allocate(capacity: stack)
    elementIndex.initialize(repeating: 0, count: stack)
    var targets: UInt64 = 0
    var enters: UInt64 = 0
    for (i, p) in pointers.enumerated() {
      if p.tokens.isEmpty { targets |= 1 << UInt64(i) } else { enters |= 1 << UInt64(i) }
    }
    rootTargets = targets
    rootEnters = enters
    var multi: UInt64 = 0
    for (i, p) in pointers.enumerated() where p.hasWildcard { multi |= 1 << UInt64(i) }
    multiMask = multi
    matches.reserveCapacity(multi == 0 ? 0 : 64)
    keyScratch.reserveCapacity(256)
  }

  deinit {
    tokenBytes.deallocate()
    tokenOffsets.deallocate()
    tokenLengths.deallocate()
    tokenIndices.deallocate()
    lengthMasks.deallocate()
    fields.deallocate()
    containerIsObject.deallocate()
    active.deallocate()
    seen.deallocate()
    elementIndex.deallocate()
  }

  /// The value of pointer `index` from the last successful scan.
  @inline(__always)
  public func field(_ index: Int) -> FieldValue { fields[index] }

  public func scan(_ record: UnsafeRawBufferPointer) -> Bool {
    for k in 0..<pointers.count { fields[k] = FieldValue() }
    if multiMask != 0 { matches.removeAll(keepingCapacity: true) }
    if collectsTopLevelKeys { topLevelKeys.removeAll(keepingCapacity: true) }
    guard let raw = record.baseAddress, record.count > 0 else { return false }
    return scan(raw.assumingMemoryBound(to: UInt8.self), count: record.count)
  }

  private enum Step { case value, afterValue, memberKey }

  private func scan(_ b: UnsafePointer<UInt8>, count n: Int) -> Bool {
    var i = skipWhitespace(b, 0, n)
    guard i < n, b[i] == UInt8(ascii: "{") else { return false }
    var depth = 0
    var targets = rootTargets
    var enters = rootEnters
    var step = Step.value
    while true {
      switch step {
      case .value:
        guard i < n else { return false }
        let c = b[i]
        if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
          if targets != 0 { capture(targets, .other, i, i, false) }
          depth += 1
          guard depth <= RecordScanner.maxDepth else { return false }
          let isObject = c == UInt8(ascii: "{")
          containerIsObject[depth] = isObject
          active[depth] = enters
          seen[depth] = 0
          elementIndex[depth] = 0
          targets = 0
          enters = 0
          i = skipWhitespace(b, i + 1, n)
          guard i < n else { return false }
          if isObject {
            if b[i] == UInt8(ascii: "}") {
              i += 1
              depth -= 1
              step = .afterValue
            } else {
              step = .memberKey
            }
          } else {
            if b[i] == UInt8(ascii: "]") {
              i += 1
              depth -= 1
              step = .afterValue
            } else {
              if active[depth] != 0 { matchIndex(depth, &targets, &enters) }
              step = .value
            }
          }
          continue
        }
        let start = i
        var kind = FieldValue.Kind.other
        var contentStart = i
        var contentEnd = i
        var escaped = false
        switch c {
        case UInt8(ascii: "\""):
          guard let (close, esc) = scanString(b, i + 1, n) else { return false }
          contentStart = i + 1
          contentEnd = close
          escaped = esc
          kind = .string
          i = close + 1
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
          guard let (end, isInteger) = scanNumber(b, i, n) else { return false }
          kind = isInteger ? .integer : .other
          contentStart = start
          contentEnd = end
          i = end
        case UInt8(ascii: "t"):
          guard matchLiteral(b, i, n, "true") else { return false }
          i += 4
        case UInt8(ascii: "f"):
          guard matchLiteral(b, i, n, "false") else { return false }
          i += 5
        case UInt8(ascii: "n"):
          guard matchLiteral(b, i, n, "null") else { return false }
          kind = .null
          i += 4
        default:
          return false
        }
        if targets != 0 { capture(targets, kind, contentStart, contentEnd, escaped) }
        targets = 0
        enters = 0
        step = .afterValue

      case .afterValue:
        i = skipWhitespace(b, i, n)
        if depth == 0 { return i == n }
        guard i < n else { return false }
        let c = b[i]
        if c == UInt8(ascii: ",") {
          i = skipWhitespace(b, i + 1, n)
          if containerIsObject[depth] {
            step = .memberKey
          } else {
            elementIndex[depth] += 1
            if active[depth] != 0 { matchIndex(depth, &targets, &enters) }
            step = .value
          }
        } else if c == (containerIsObject[depth] ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
          i += 1
          depth -= 1
        } else {
          return false
        }

      case .memberKey:
        guard i < n, b[i] == UInt8(ascii: "\"") else { return false }
        guard let (close, esc) = scanString(b, i + 1, n) else { return false }
        let keyStart = i + 1
        if collectsTopLevelKeys && depth == 1 { topLevelKeys.append((keyStart, close, esc)) }
        i = skipWhitespace(b, close + 1, n)
        guard i < n, b[i] == UInt8(ascii: ":") else { return false }
        i = skipWhitespace(b, i + 1, n)
        if active[depth] != 0 {
          matchKey(depth, b + keyStart, close - keyStart, esc, &targets, &enters)
        }
        step = .value
      }
    }
  }

  @inline(__always)
  private func capture(
    _ targets: UInt64, _ kind: FieldValue.Kind, _ start: Int, _ end: Int, _ escaped: Bool
  ) {
    var mask = targets
    while mask != 0 {
      let p = mask.trailingZeroBitCount
      mask &= mask - 1
      if multiMask & (1 << UInt64(p)) != 0 {
        var value = FieldValue()
        value.kind = kind
        value.start = start
        value.end = end
        value.escaped = escaped
        matches.append((p, value))
        continue
      }
      fields[p].kind = kind
      fields[p].start = start
      fields[p].end = end
      fields[p].escaped = escaped
    }
  }

  private func matchKey(
    _ depth: Int, _ key: UnsafePointer<UInt8>, _ keyLength: Int, _ escaped: Bool,
    _ targets: inout UInt64, _ enters: inout UInt64
  ) {
    if escaped {
      keyScratch.removeAll(keepingCapacity: true)
      _ = JSONString.unescape(
        UnsafeRawBufferPointer(start: key, count: keyLength), into: &keyScratch)
      keyScratch.withUnsafeBufferPointer { unescaped in
        matchKeyBytes(depth, unescaped.baseAddress, unescaped.count, &targets, &enters)
      }
    } else {
      matchKeyBytes(depth, key, keyLength, &targets, &enters)
    }
  }

  @inline(__always)
  private func matchKeyBytes(
    _ depth: Int, _ key: UnsafePointer<UInt8>?, _ length: Int,
    _ targets: inout UInt64, _ enters: inout UInt64
  ) {
    var mask = active[depth] & lengthMasks[(depth - 1) * 64 + min(length, 63)]
    while mask != 0 {
      let p = mask.trailingZeroBitCount
      mask &= mask - 1
      let slot = p * tokenStride + depth - 1
      guard tokenLengths[slot] == length else { continue }
      guard length == 0 || bytesEqual(tokenBytes + tokenOffsets[slot], key!, count: length) else {
        continue
      }
      let bit: UInt64 = 1 << UInt64(p)
      if seen[depth] & bit != 0 { fields[p].duplicate = true }
      seen[depth] |= bit
      if tokenCounts[p] == depth { targets |= bit } else { enters |= bit }
    }
  }

  private func matchIndex(_ depth: Int, _ targets: inout UInt64, _ enters: inout UInt64) {
    let index = elementIndex[depth]
    var mask = active[depth]
    while mask != 0 {
      let p = mask.trailingZeroBitCount
      mask &= mask - 1
      let wanted = tokenIndices[p * tokenStride + depth - 1]
      guard wanted == index || wanted == JSONPointer.wildcard else { continue }
      let bit: UInt64 = 1 << UInt64(p)
      if tokenCounts[p] == depth { targets |= bit } else { enters |= bit }
    }
  }
}

@inline(__always)
func skipWhitespace(_ b: UnsafePointer<UInt8>, _ from: Int, _ n: Int) -> Int {
  var i = from
  // Records are mostly compact: one compare passes over the common case, since every JSON
  // whitespace byte is at most 0x20.
  if i < n && b[i] > 0x20 { return i }
  while i < n {
    let c = b[i]
    guard c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D else { break }
    i += 1
  }
  return i
}

/// Scans a string body from just after its opening quote. Returns the index of the closing
/// quote and whether any escape occurs, or nil on an unescaped control character, a bad
/// escape or a missing close.
@inline(__always)
func scanString(_ b: UnsafePointer<UInt8>, _ from: Int, _ n: Int) -> (Int, Bool)? {
  var escaped: Int32 = 0
  let close = cg_scan_string(b, from, n, &escaped)
  return close < 0 ? nil : (close, escaped != 0)
}

/// Checks the number grammar from `from`; returns the end index and whether it is an integer.
@inline(__always)
func scanNumber(_ b: UnsafePointer<UInt8>, _ from: Int, _ n: Int) -> (Int, Bool)? {
  var i = from
  if b[i] == UInt8(ascii: "-") {
    i += 1
    guard i < n else { return nil }
  }
  if b[i] == UInt8(ascii: "0") {
    i += 1
  } else if b[i] >= UInt8(ascii: "1") && b[i] <= UInt8(ascii: "9") {
    i = skipDigits(b, i + 1, n)
  } else {
    return nil
  }
  var integer = true
  if i < n && b[i] == UInt8(ascii: ".") {
    i += 1
    guard i < n && isDigit(b[i]) else { return nil }
    i = skipDigits(b, i + 1, n)
    integer = false
  }
  if i < n && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
    i += 1
    if i < n && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
    guard i < n && isDigit(b[i]) else { return nil }
    i = skipDigits(b, i + 1, n)
    integer = false
  }
  return (i, integer)
}

/// The index of the first non-digit at or after `from` (or `n`). Eight bytes at a time where
/// eight remain: a loop per digit ends at a place the CPU cannot predict, once per number.
@inline(__always)
func skipDigits(_ b: UnsafePointer<UInt8>, _ from: Int, _ n: Int) -> Int {
  var i = from
  while i + 8 <= n {
    // Per byte: x ^ 0x30 maps '0'...'9' to 0...9; adding 0x76 to its low seven bits sets
    // the high bit from 10 up, and the high bit of x ^ 0x30 itself flags bytes from 0x80.
    // The low seven bits plus 0x76 stay below 0x100, so no carry crosses into the next byte.
    let x = UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self) ^ 0x3030_3030_3030_3030
    let other = ((x & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7676_7676_7676_7676 | x) & 0x8080_8080_8080_8080
    if other != 0 { return i + other.littleEndian.trailingZeroBitCount >> 3 }
    i += 8
  }
  while i < n && isDigit(b[i]) { i += 1 }
  return i
}

@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

@inline(__always)
func hexValue(_ c: UInt8) -> Int { Int(cg_hex_value(c)) }

@inline(__always)
private func matchLiteral(
  _ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ literal: StaticString
) -> Bool {
  let length = literal.utf8CodeUnitCount
  guard i + length <= n else { return false }
  return bytesEqual(b + i, literal.utf8Start, count: length)
}
