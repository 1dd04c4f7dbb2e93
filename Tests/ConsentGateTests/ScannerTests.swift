import CScanKernels
import Foundation
import Testing

@testable import ConsentGate

/// Scans `text` as one record with the given pointers; nil when it is not a valid object.
func scanFields(_ text: [UInt8], _ pointers: [String]) -> [FieldValue]? {
  let scanner = RecordScanner(pointers: pointers.map { try! JSONPointer($0) })
  let ok = text.withUnsafeBytes { UTF8Validation.isValid($0) && scanner.scan($0) }
  return ok ? pointers.indices.map { scanner.field($0) } : nil
}

func isValidRecord(_ text: String) -> Bool { scanFields(Array(text.utf8), ["/a"]) != nil }

/// The text of a string or integer field.
func fieldText(_ text: String, _ pointer: String) -> String? {
  let bytes = Array(text.utf8)
  guard let f = scanFields(bytes, [pointer])?[0], f.kind == .string || f.kind == .integer else {
    return nil
  }
  var out: [UInt8] = []
  bytes[f.start..<f.end].withUnsafeBytes { _ = JSONString.unescape($0, into: &out) }
  return String(decoding: out, as: UTF8.self)
}

@Suite struct ScannerGrammarTests {
  /// In the spirit of JSONTestSuite's y_ files: each must be accepted.
  static let accepted = [
    "{}", " {} ", "\t{}\r", #"{"a":1}"#, #"{"a":-0}"#, #"{"a":0.5}"#, #"{"a":1e400}"#,
    #"{"a":1E+2}"#, #"{"a":-1.25e-7}"#, #"{"a":true,"b":false,"c":null}"#,
    #"{"a":"\"\\\/\b\f\n\r\t\u00e9"}"#, #"{"a":"\ud800"}"#, #"{"a":"\ud83d\ude00"}"#,
    #"{"a":[]}"#, #"{"a":[1,[2,[3]],{"b":{}}]}"#, #"{"":""}"#, #"{"a" : [ 1 , 2 ] }"#,
    "{\"a\":\"é😀\"}", #"{"a":"\u0000"}"#, #"{"a":1,"a":2}"#,
  ]
  /// Each must be rejected (n_ files).
  static let rejected = [
    "", " ", "[]", "1", "\"a\"", "null", "{", "}", "{}{}", "{} x", #"{"a"}"#, #"{"a":}"#,
    #"{"a":1,}"#, #"{,"a":1}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":-}"#,
    #"{"a":1e}"#, #"{"a":+1}"#, #"{"a":0x10}"#, #"{"a":NaN}"#, #"{"a":Infinity}"#,
    #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":True}"#, #"{a:1}"#, #"{'a':1}"#, #"{"a":'x'}"#,
    #"{"a":"\x"}"#, #"{"a":"\u12"}"#, #"{"a":"\u12G4"}"#, "{\"a\":\"tab\there\"}",
    "{\"a\":\"\u{1}\"}", #"{"a":[1,]}"#, #"{"a":[1 2]}"#, #"{"a":"unterminated}"#,
    #"{"a":1 "b":2}"#, #"{"a":[}"#, #"{"a":{]}"#, "{\"a\":1}\u{0B}",
  ]

  @Test(arguments: accepted) func acceptsValidObject(_ text: String) {
    #expect(isValidRecord(text), "should accept \(text)")
  }

  @Test(arguments: rejected) func rejectsInvalidText(_ text: String) {
    #expect(!isValidRecord(text), "should reject \(text)")
  }

  @Test func depth512IsAcceptedAnd513Rejected() {
    let ok = String(repeating: "[", count: 511)
    #expect(isValidRecord("{\"a\":" + ok + String(repeating: "]", count: 511) + "}"))
    let deep = String(repeating: "[", count: 512)
    #expect(!isValidRecord("{\"a\":" + deep + String(repeating: "]", count: 512) + "}"))
  }

  @Test func hundredThousandDeepLineDoesNotOverflowTheStack() {
    let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    #expect(!isValidRecord("{\"a\":" + deep + "}"))
  }
}

@Suite struct UTF8Tests {
  static let invalid: [[UInt8]] = [
    [0xC0, 0xAF],  // overlong /
    [0xE0, 0x80, 0xAF],  // overlong
    [0xED, 0xA0, 0x80],  // encoded surrogate
    [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
    [0xF5, 0x80, 0x80, 0x80],
    [0xC3],  // truncated
    [0xE2, 0x82],
    [0x80],  // lone continuation
    [0xFF],
  ]

  @Test(arguments: invalid) func rejectsMalformedUTF8(_ bytes: [UInt8]) {
    let record = Array(#"{"a":""#.utf8) + bytes + Array(#""}"#.utf8)
    #expect(!record.withUnsafeBytes { UTF8Validation.isValid($0) })
  }

  @Test func acceptsWellFormedUTF8() {
    let text = "{\"a\":\"é€𝄞😀 ελληνικά 日本語\u{10FFFF}\"}"
    #expect(Array(text.utf8).withUnsafeBytes { UTF8Validation.isValid($0) })
  }

  @Test func agreesWithSwiftDecoderOnRandomBytes() {
    var rng = SplitMix64(seed: 7)
    for _ in 0..<20_000 {
      let n = Int(rng.next() % 12)
      let bytes = (0..<n).map { _ in
        UInt8(truncatingIfNeeded: rng.next() % 5 == 0 ? rng.next() % 128 : rng.next())
      }
      let ours = bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
      let swift = String(validating: bytes, as: UTF8.self) != nil
      #expect(ours == swift, "disagree on \(bytes)")
    }
  }
}

/// The string kernel (SSE2 skipping 16 bytes at a time, then escapes and UTF-8 one sequence
/// at a time) against a byte-by-byte reference, on strings built to put quotes, escapes,
/// controls and multi-byte sequences on and across 16-byte boundaries and the buffer end.
@Suite struct StringKernelTests {
  /// Index of the closing quote and whether a backslash occurs, or nil: the JSON string
  /// grammar (RFC 8259 §7) with well-formed UTF-8, read one byte at a time.
  func reference(_ b: [UInt8], from: Int) -> (Int, Bool)? {
    var i = from
    var escaped = false
    while i < b.count {
      let c = b[i]
      if c == 0x22 { return (i, escaped) }
      if c == 0x5C {
        escaped = true
        guard i + 1 < b.count else { return nil }
        let e = b[i + 1]
        if Array("\"\\/bfnrt".utf8).contains(e) {
          i += 2
        } else if e == UInt8(ascii: "u") {
          guard i + 5 < b.count else { return nil }
          for k in 2...5 where !b[i + k].isHexDigitForTest { return nil }
          i += 6
        } else {
          return nil
        }
        continue
      }
      if c < 0x20 { return nil }
      if c >= 0x80 {
        var length = 0
        for n in [2, 3, 4] where i + n <= b.count {
          if String(validating: b[i..<(i + n)], as: UTF8.self) != nil {
            length = n
            break
          }
        }
        guard length > 0 else { return nil }
        i += length
        continue
      }
      i += 1
    }
    return nil
  }

  @Test func agreesWithByteByByteReference() {
    var rng = SplitMix64(seed: 11)
    let pieces: [[UInt8]] = [
      Array("a".utf8), Array("0123456789abcdef".utf8), Array("\\n".utf8), Array("\\\"".utf8),
      Array("\\u00e9".utf8), Array("\\u12".utf8), Array("\\x".utf8), Array("é".utf8),
      Array("€".utf8), Array("😀".utf8), [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
      [0x80], [0x1F], [0x09], [0x7F], Array("\"".utf8), [0xE2, 0x82],
    ]
    var accepted = 0
    for _ in 0..<30_000 {
      var bytes: [UInt8] = Array(repeating: UInt8(ascii: "x"), count: Int(rng.next() % 20))
      for _ in 0..<Int(rng.next() % 6) {
        // Mostly plain runs, so that the special bytes land at every offset mod 16.
        bytes +=
          rng.next() % 3 == 0
          ? pieces[Int(rng.next() % UInt64(pieces.count))]
          : Array(repeating: UInt8(ascii: "y"), count: Int(rng.next() % 17))
      }
      if rng.next() % 4 != 0 { bytes.append(0x22) }
      let expected = reference(bytes, from: 0)
      var escaped: Int32 = 0
      let close = bytes.withUnsafeBufferPointer {
        cg_scan_string($0.baseAddress, 0, $0.count, &escaped)
      }
      let ours: (Int, Bool)? = close < 0 ? nil : (close, escaped != 0)
      #expect(ours?.0 == expected?.0 && ours?.1 == expected?.1, "disagree on \(bytes)")
      if expected != nil { accepted += 1 }
    }
    #expect(accepted > 5_000)
  }
}

extension UInt8 {
  fileprivate var isHexDigitForTest: Bool {
    (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
  }
}

@Suite struct PointerTests {
  @Test func parsesEscapesAndIndices() throws {
    let p = try JSONPointer("/a~1b/m~0n/0/-/01")
    #expect(p.tokens.map { String(decoding: $0, as: UTF8.self) } == ["a/b", "m~n", "0", "-", "01"])
    #expect(p.arrayIndices == [-1, -1, 0, -1, -1])
    #expect(throws: JSONPointer.ParseError.self) { try JSONPointer("a") }
    #expect(throws: JSONPointer.ParseError.self) { try JSONPointer("/a~2") }
  }

  @Test func resolvesNestedMembersAndArrayElements() {
    let r = #"{"geo":{"country":"DE","list":[{"c":"FR"},{"c":"ES"}]},"user_id":"u1"}"#
    #expect(fieldText(r, "/geo/country") == "DE")
    #expect(fieldText(r, "/geo/list/1/c") == "ES")
    #expect(fieldText(r, "/user_id") == "u1")
    #expect(scanFields(Array(r.utf8), ["/geo/list/2/c"])![0].kind == .absent)
    #expect(scanFields(Array(r.utf8), ["/geo/list/-"])![0].kind == .absent)
    #expect(scanFields(Array(r.utf8), ["/user_id/x"])![0].kind == .absent)
    #expect(scanFields(Array(r.utf8), ["/missing"])![0].kind == .absent)
    #expect(scanFields(Array(r.utf8), ["/geo"])![0].kind == .other)
  }

  @Test func nestedKeyWithSameNameIsNotTheTopLevelOne() {
    let r = #"{"profile":{"user_id":"decoy"},"user_id":"real"}"#
    #expect(fieldText(r, "/user_id") == "real")
    let f = scanFields(Array(r.utf8), ["/user_id"])![0]
    #expect(!f.duplicate)
    let only = #"{"profile":{"user_id":"decoy"}}"#
    #expect(scanFields(Array(only.utf8), ["/user_id"])![0].kind == .absent)
  }

  @Test func keysAreComparedAfterUnescaping() {
    #expect(fieldText(#"{"user\u005fid":"u9"}"#, "/user_id") == "u9")
    #expect(fieldText(#"{"a\/b":"x"}"#, "/a~1b") == "x")
  }

  @Test func duplicateOnConsultedPathIsFlagged() {
    let dup = scanFields(Array(#"{"user_id":"a","user_id":"b"}"#.utf8), ["/user_id"])![0]
    #expect(dup.duplicate)
    let escapedDup = scanFields(Array(#"{"user_id":"a","user\u005fid":"b"}"#.utf8), ["/user_id"])![
      0]
    #expect(escapedDup.duplicate)
    let parentDup = scanFields(
      Array(#"{"geo":{"country":"DE"},"geo":{"country":"FR"}}"#.utf8), ["/geo/country"])![0]
    #expect(parentDup.duplicate)
    let elsewhere = scanFields(Array(#"{"user_id":"a","x":1,"x":2}"#.utf8), ["/user_id"])![0]
    #expect(!elsewhere.duplicate)
    let nestedElsewhere = scanFields(
      Array(#"{"a":{"k":1,"k":2},"b":{"k":1}}"#.utf8), ["/b/k"])![0]
    #expect(!nestedElsewhere.duplicate)
  }

  @Test func valueKinds() {
    let r = #"{"s":"x","i":-5,"f":1.5,"e":1e3,"b":true,"n":null,"o":{},"a":[]}"#
    let kinds = scanFields(Array(r.utf8), ["/s", "/i", "/f", "/e", "/b", "/n", "/o", "/a"])!.map(
      \.kind)
    #expect(kinds == [.string, .integer, .other, .other, .other, .null, .other, .other])
    #expect(fieldText(r, "/i") == "-5")
  }

  @Test func rootPointerIsTheWholeObject() {
    #expect(scanFields(Array("{}".utf8), [""])![0].kind == .other)
  }
}

@Suite struct DifferentialTests {
  /// Our accept/reject agrees with Foundation's JSONSerialization on generated lines, valid
  /// and mutated. Documented differences are excluded: lone surrogates (valid JSON to us),
  /// duplicate keys (valid JSON), numbers too large for a Double (valid grammar), and the
  /// trailing commas Foundation tolerates (`{"a":1,}`, invalid by RFC 8259).
  @Test func agreesWithJSONSerialization() throws {
    var rng = SplitMix64(seed: 42)
    let alphabet = Array(#"{}[]:,"\ abc01-.eE+tfnul"#.utf8)
    var compared = 0
    var disagreements: [String] = []
    for i in 0..<100_000 {
      var line = Array(sampleRecord(&rng).utf8)
      if i % 2 == 1 {
        // Mutate: replace, insert or delete a few bytes.
        for _ in 0..<(1 + Int(rng.next() % 3)) where !line.isEmpty {
          let at = Int(rng.next() % UInt64(line.count))
          switch rng.next() % 3 {
          case 0: line[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
          case 1: line.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
          default: line.remove(at: at)
          }
        }
      }
      let text = String(decoding: line, as: UTF8.self)
      if text.contains("\\ud8") || text.contains("\\udc")
        || text.range(of: #"[eE][+-]?[0-9]{3,}"#, options: .regularExpression) != nil
        || text.range(of: #",[ ]*[}\]]"#, options: .regularExpression) != nil
      {
        continue
      }
      let ours = scanFields(line, ["/user_id"]) != nil
      let theirs: Bool
      if let object = try? JSONSerialization.jsonObject(
        with: Data(line), options: [.fragmentsAllowed])
      {
        theirs = object is [String: Any]
      } else {
        theirs = false
      }
      compared += 1
      if ours != theirs && disagreements.count < 5 {
        disagreements.append("\(ours) vs \(theirs): \(text)")
      }
    }
    #expect(disagreements.isEmpty, "\(disagreements)")
    #expect(compared > 90_000)
  }

  func sampleRecord(_ rng: inout SplitMix64) -> String {
    let texts = ["hello", "caf\\u00e9", "a\\\"b", "line\\nbreak", "emoji 😀", "tab\\t", "x\\/y", ""]
    let t = texts[Int(rng.next() % UInt64(texts.count))]
    let n = Int(rng.next() % 100_000) - 50_000
    return
      #"{"user_id":"u\#(rng.next() % 1000)","n":\#(n),"f":\#(Double(n) / 8),"text":"\#(t)","tags":["a","b"],"geo":{"country":"DE","ok":true,"none":null}}"#
  }
}

/// `skipDigits` (eight bytes at a time) against a byte-by-byte loop, with every byte value
/// after runs of digits that end on and across word boundaries and the buffer end.
@Suite struct DigitRunTests {
  @Test func stopsAtTheFirstNonDigitLikeAByteLoop() {
    for length in 0...20 {
      for stop in 0...255 {
        var bytes = [UInt8](repeating: UInt8(ascii: "7"), count: length) + [UInt8(stop)]
        bytes += [UInt8](repeating: UInt8(ascii: "1"), count: 9)
        for n in [length, length + 1, bytes.count] {
          var expected = 0
          while expected < n && bytes[expected] >= 0x30 && bytes[expected] <= 0x39 {
            expected += 1
          }
          let got = bytes.withUnsafeBufferPointer { skipDigits($0.baseAddress!, 0, n) }
          #expect(got == expected, "length \(length), stop \(stop), n \(n)")
        }
      }
    }
  }
}
