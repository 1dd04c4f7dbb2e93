/// Unescaping and escaping of JSON string content.
public enum JSONString {
  /// Appends the unescaped UTF-8 of a validated string body to `out`.
  ///
  /// Returns false when the text holds a lone surrogate escape (`"\ud800"`): valid JSON, but
  /// not Unicode text. Such a surrogate is appended in its 3-byte generalized form, which no
  /// valid UTF-8 key or id can equal.
  @discardableResult
  public static func unescape(_ body: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
    var ok = true
    var i = 0
    let n = body.count
    while i < n {
      let c = body[i]
      if c != UInt8(ascii: "\\") {
        out.append(c)
        i += 1
        continue
      }
      let e = body[i + 1]
      i += 2
      switch e {
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var unit = hex4(body, i)
        i += 4
        if unit >= 0xD800 && unit <= 0xDBFF, i + 5 < n, body[i] == UInt8(ascii: "\\"),
          body[i + 1] == UInt8(ascii: "u")
        {
          let low = hex4(body, i + 2)
          if low >= 0xDC00 && low <= 0xDFFF {
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            i += 6
          }
        }
        if unit >= 0xD800 && unit <= 0xDFFF { ok = false }
        appendUTF8(UInt32(unit), to: &out)
      default: out.append(e)
      }
    }
    return ok
  }

  private static func hex4(_ body: UnsafeRawBufferPointer, _ i: Int) -> Int {
    (hexValue(body[i]) << 12) | (hexValue(body[i + 1]) << 8) | (hexValue(body[i + 2]) << 4)
      | hexValue(body[i + 3])
  }

  static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
      out.append(UInt8(scalar))
    case 0x80..<0x800:
      out.append(UInt8(0xC0 | (scalar >> 6)))
      out.append(UInt8(0x80 | (scalar & 0x3F)))
    case 0x800..<0x10000:
      out.append(UInt8(0xE0 | (scalar >> 12)))
      out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
      out.append(UInt8(0x80 | (scalar & 0x3F)))
    default:
      out.append(UInt8(0xF0 | (scalar >> 18)))
      out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
      out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
      out.append(UInt8(0x80 | (scalar & 0x3F)))
    }
  }

  /// Appends `bytes` (valid UTF-8) as a quoted JSON string: `"`, `\` and control bytes are
  /// escaped, everything else is copied.
  public static func appendQuoted(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    let hex: StaticString = "0123456789abcdef"
    out.append(UInt8(ascii: "\""))
    for c in bytes {
      switch c {
      case UInt8(ascii: "\""):
        out.append(UInt8(ascii: "\\"))
        out.append(c)
      case UInt8(ascii: "\\"):
        out.append(UInt8(ascii: "\\"))
        out.append(c)
      case 0x0A:
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "n"))
      case 0x0D:
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "r"))
      case 0x09:
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "t"))
      case 0..<0x20, 0x7F:
        out.append(contentsOf: [
          UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
        ])
        out.append(hex.utf8Start[Int(c >> 4)])
        out.append(hex.utf8Start[Int(c & 15)])
      default:
        out.append(c)
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// Appends a Swift string as a quoted JSON string.
  public static func appendQuoted(_ string: String, to out: inout [UInt8]) {
    var s = string
    s.withUTF8 { appendQuoted(UnsafeRawBufferPointer($0), to: &out) }
  }
}
