/// A JSON document for the small, cold parts of the tool: the policy file, the report and
/// `explain --json`. Objects keep their key order; ``canonical`` sorts them.
public enum JSONValue: Sendable, Equatable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([(String, JSONValue)])

  public static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): true
    case (.bool(let x), .bool(let y)): x == y
    case (.int(let x), .int(let y)): x == y
    case (.double(let x), .double(let y)): x == y
    case (.string(let x), .string(let y)): x == y
    case (.array(let x), .array(let y)): x == y
    case (.object(let x), .object(let y)):
      x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: false
    }
  }

  /// The value of `key` in an object.
  public subscript(key: String) -> JSONValue? {
    if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
    return nil
  }

  /// Compact text, keys in their stored order.
  public var compact: String { String(decoding: bytes(sorted: false, indent: nil), as: UTF8.self) }
  /// Compact text with keys sorted by their UTF-8 bytes: the form that gets hashed.
  public var canonical: String { String(decoding: bytes(sorted: true, indent: nil), as: UTF8.self) }
  /// Indented text for people, keys in stored order.
  public var pretty: String { String(decoding: bytes(sorted: false, indent: 0), as: UTF8.self) }

  public func bytes(sorted: Bool, indent: Int?) -> [UInt8] {
    var out: [UInt8] = []
    write(to: &out, sorted: sorted, indent: indent)
    return out
  }

  private func write(to out: inout [UInt8], sorted: Bool, indent: Int?) {
    func newline(_ level: Int) {
      guard indent != nil else { return }
      out.append(0x0A)
      out.append(contentsOf: [UInt8](repeating: 0x20, count: level * 2))
    }
    switch self {
    case .null: out.append(contentsOf: "null".utf8)
    case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
    case .int(let i): out.append(contentsOf: String(i).utf8)
    case .double(let d):
      if d.isFinite && d == d.rounded() && abs(d) < 1e15 {
        out.append(contentsOf: String(Int64(d)).utf8)
      } else {
        out.append(contentsOf: (d.isFinite ? "\(d)" : "null").utf8)
      }
    case .string(let s): JSONString.appendQuoted(s, to: &out)
    case .array(let items):
      out.append(UInt8(ascii: "["))
      for (k, item) in items.enumerated() {
        if k > 0 { out.append(UInt8(ascii: ",")) }
        newline((indent ?? 0) + 1)
        item.write(to: &out, sorted: sorted, indent: indent.map { $0 + 1 })
      }
      if !items.isEmpty { newline(indent ?? 0) }
      out.append(UInt8(ascii: "]"))
    case .object(let members):
      let ordered =
        sorted
        ? members.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) } : members
      out.append(UInt8(ascii: "{"))
      for (k, (key, value)) in ordered.enumerated() {
        if k > 0 { out.append(UInt8(ascii: ",")) }
        newline((indent ?? 0) + 1)
        JSONString.appendQuoted(key, to: &out)
        out.append(UInt8(ascii: ":"))
        if indent != nil { out.append(0x20) }
        value.write(to: &out, sorted: sorted, indent: indent.map { $0 + 1 })
      }
      if !members.isEmpty { newline(indent ?? 0) }
      out.append(UInt8(ascii: "}"))
    }
  }
}

extension JSONValue: Decodable {
  private struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  public init(from decoder: any Decoder) throws {
    if let object = try? decoder.container(keyedBy: Key.self) {
      var members: [(String, JSONValue)] = []
      for key in object.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
        members.append((key.stringValue, try object.decode(JSONValue.self, forKey: key)))
      }
      self = .object(members)
      return
    }
    if var array = try? decoder.unkeyedContainer() {
      var items: [JSONValue] = []
      while !array.isAtEnd { items.append(try array.decode(JSONValue.self)) }
      self = .array(items)
      return
    }
    let single = try decoder.singleValueContainer()
    if single.decodeNil() {
      self = .null
    } else if let b = try? single.decode(Bool.self) {
      self = .bool(b)
    } else if let i = try? single.decode(Int64.self) {
      self = .int(i)
    } else if let d = try? single.decode(Double.self) {
      self = .double(d)
    } else {
      self = .string(try single.decode(String.self))
    }
  }
}
