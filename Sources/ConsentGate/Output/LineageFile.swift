/// `lineage/NAME` (SPEC §11): one line per distinct user among `kept/NAME`'s records,
/// `{"user_id":"…","records":N}`, sorted by the id's UTF-8 bytes, compressed as the kept
/// file is. `affected` answers from these files without reading a kept record.
enum LineageFile {
  /// Writes the lines for `users` (canonical id bytes → kept records) to `file`, in frames
  /// of about 1 MiB for compressed output; an empty compressed file is one empty frame.
  static func write(_ users: [[UInt8]: Int], to file: OutputFile, policy: Policy)
    throws(OutputError)
  {
    let compressor = makeBlockCompressor(policy.compression, level: policy.level)
    var plain: [UInt8] = []
    var frame: [UInt8] = []
    func flush() throws(OutputError) {
      if let compressor {
        frame.removeAll(keepingCapacity: true)
        compressor.compress(plain, appendingTo: &frame)
        try file.write(frame)
      } else {
        try file.write(plain)
      }
      plain.removeAll(keepingCapacity: true)
    }
    let ids = users.keys.sorted { $0.lexicographicallyPrecedes($1) }
    for id in ids {
      appendLine(id: id, records: users[id]!, to: &plain)
      if plain.count >= 1 << 20 { try flush() }
    }
    if !plain.isEmpty || (compressor != nil && file.bytesWritten == 0) { try flush() }
    file.records = ids.count
  }

  /// `{"user_id":"ID","records":N}` and LF: only `"`, `\` and U+0000–U+001F escaped (as
  /// `\"`, `\\`, `\u00xx` in lowercase hex), every other byte as it is, so the bytes are the
  /// same wherever they are made.
  static func appendLine(id: [UInt8], records: Int, to out: inout [UInt8]) {
    out += #"{"user_id":""#.utf8
    let hex = Array("0123456789abcdef".utf8)
    for b in id {
      switch b {
      case UInt8(ascii: "\""): out += #"\""#.utf8
      case UInt8(ascii: "\\"): out += #"\\"#.utf8
      case 0..<0x20: out += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]]
      default: out.append(b)
      }
    }
    out += #"","records":"#.utf8
    out += String(records).utf8
    out += "}\n".utf8
  }
}
