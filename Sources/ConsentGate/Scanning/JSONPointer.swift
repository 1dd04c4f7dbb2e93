/// An RFC 6901 JSON Pointer, such as `/user_id` or `/geo/0/country`.
///
/// `~1` stands for `/` and `~0` for `~` inside a token. A token made of digits (no leading
/// zero) also addresses an array element.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
  /// The pointer as written.
  public let text: String
  /// The unescaped reference tokens, as UTF-8 bytes.
  public let tokens: [[UInt8]]
  /// For each token, the array index it names, -1 where it names none, or
  /// ``JSONPointer/wildcard`` for a `*` token of a pointer parsed with wildcards.
  let arrayIndices: [Int]

  /// The `arrayIndices` value of a `*` token that matches every element (SPEC §13.1).
  static let wildcard = -2

  /// Whether a token is the wildcard `*`, which then matches no object key.
  public var hasWildcard: Bool { arrayIndices.contains(JSONPointer.wildcard) }

  public enum ParseError: Error, Equatable, Sendable {
    /// The text neither is empty nor starts with `/`.
    case missingLeadingSlash(String)
    /// A `~` is followed by something other than `0` or `1`.
    case badEscape(String)
  }

  /// Parses `text`. With `wildcards` (embedded-user paths only, SPEC §13.1), a token that is
  /// exactly `*` matches every element of an array and no key; elsewhere it is a literal key.
  public init(_ text: String, wildcards: Bool = false) throws(ParseError) {
    self.text = text
    if text.isEmpty {
      tokens = []
      arrayIndices = []
      return
    }
    let bytes = Array(text.utf8)
    guard bytes.first == UInt8(ascii: "/") else { throw .missingLeadingSlash(text) }
    var result: [[UInt8]] = []
    var current: [UInt8] = []
    var i = 1
    while i <= bytes.count {
      if i == bytes.count || bytes[i] == UInt8(ascii: "/") {
        result.append(current)
        current = []
        i += 1
        continue
      }
      if bytes[i] == UInt8(ascii: "~") {
        guard i + 1 < bytes.count else { throw .badEscape(text) }
        switch bytes[i + 1] {
        case UInt8(ascii: "0"): current.append(UInt8(ascii: "~"))
        case UInt8(ascii: "1"): current.append(UInt8(ascii: "/"))
        default: throw .badEscape(text)
        }
        i += 2
        continue
      }
      current.append(bytes[i])
      i += 1
    }
    tokens = result
    arrayIndices = result.map {
      wildcards && $0 == [UInt8(ascii: "*")] ? JSONPointer.wildcard : JSONPointer.arrayIndex(of: $0)
    }
  }

  public var description: String { text }

  /// `0` or a digit run without a leading zero names an index; anything else (`-`, `01`) not.
  static func arrayIndex(of token: [UInt8]) -> Int {
    guard !token.isEmpty, token.count <= 18 else { return -1 }
    if token.count > 1 && token[0] == UInt8(ascii: "0") { return -1 }
    var value = 0
    for b in token {
      guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return -1 }
      value = value * 10 + Int(b - UInt8(ascii: "0"))
    }
    return value
  }
}
