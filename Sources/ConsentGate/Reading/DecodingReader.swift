import CCodecs
import CScanKernels
import CZlib
import Crypto

/// The decoded bytes of an input: gzip and zstd streams are decoded, anything else passes
/// through.
///
/// Gzip is recognised by the magic bytes `1f 8b` at the start, zstd by a frame or skippable
/// frame magic (SPEC §12), never by the file name. A multi-member gzip stream (pigz,
/// `cat a.gz b.gz`) decodes as one stream, and so do several zstd frames. After the last gzip
/// member only NUL padding may follow; it is accepted and noted in ``warnings``. After the
/// last zstd frame nothing may follow.
///
/// `read(into:)` returns decoded bytes until it returns 0 at the clean end of the input, or
/// throws ``InputError/truncated(name:)`` when a member is cut short and
/// ``InputError/corrupt(name:detail:)`` on bad data. A truncated or corrupt stream never ends
/// with a silent 0.
public final class DecodingReader {
  public let source: InputSource
  /// How the input is encoded.
  public enum Format: Sendable { case plain, gzip, zstd }
  public private(set) var format = Format.plain
  /// True when the input is gzip.
  public var isGzip: Bool { format == .gzip }
  /// Decoded bytes returned so far.
  public private(set) var bytesDecoded: UInt64 = 0
  /// Warnings about the input (NUL padding).
  public private(set) var warnings: [String] = []

  private enum State { case member, betweenMembers, padding, done }

  /// Raw input buffers. When the source lends its chunks to a ``RawInputHasher`` (a
  /// pipeline's writer), the reader rotates through several and reuses one only once its
  /// bytes are hashed, so the raw input is never copied.
  private var inputBuffers: [UnsafeMutableRawBufferPointer]
  private var lentTickets: [Int?]
  private var lender: (any RawInputHasher)?
  private let chunkSize: Int
  private var current = 0
  private var input: UnsafeMutableRawBufferPointer
  private var inputStart = 0
  private var inputEnd = 0
  private var sawEOF = false
  private var state = State.member
  private var inflater: (any GzipInflater)?
  /// The zstd decoder (a `cg_zstd_decoder`), for zstd input.
  private var zstd: OpaquePointer?
  /// zstd: whether the last frame ended with the last byte consumed, and the first bytes
  /// consumed since (up to 4), to tell a cut magic number (truncated) from trailing garbage
  /// (corrupt) when the input ends.
  private var zstdAtBoundary = true
  private var zstdHead: [UInt8] = []
  private var pushback: [UInt8] = []
  private var pushbackStart = 0

  /// Hands decoded bytes back, to be read again first (format sniffing of side files).
  public func unread(_ bytes: [UInt8]) {
    pushback = bytes + pushback[pushbackStart...]
    pushbackStart = 0
  }

  /// Opens the decoder over `source`, sniffing the first bytes.
  public init(source: InputSource, chunkSize: Int = 1 << 18) throws(InputError) {
    self.source = source
    self.chunkSize = chunkSize
    // Kept apart from `source.rawHasher`, which a caller may clear mid-input: buffers lent
    // before then must still be waited for.
    lender = source.rawHasher
    // Four buffers: the writer hashes lent chunks before anything else, so it trails the
    // reader by a chunk or two at most.
    let count = lender == nil ? 1 : 4
    inputBuffers = (0..<count).map { _ in
      UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
    }
    lentTickets = Array(repeating: nil, count: count)
    input = inputBuffers[0]
    // Sniffing needs four bytes; a short first read (a pipe) must not decide the format.
    while inputEnd < 4 && !sawEOF {
      try refill(keeping: true)
    }
    let head = Array(input[..<inputEnd])
    if inputEnd >= 2 && input[0] == 0x1f && input[1] == 0x8b {
      format = .gzip
    } else if DecodingReader.startsZstd(head) {
      format = .zstd
      guard Codecs.hasZstd else {
        throw .unreadable(name: source.displayName, detail: DecodingReader.zstdNotBuilt)
      }
      zstd = cg_zstd_decoder_new()
      if zstd == nil {
        throw .unreadable(name: source.displayName, detail: "the zstd decoder could not start")
      }
    }
    if isGzip {
      inflater = Codecs.hasISAL ? IsalInflater() : ZlibInflater()
      if inflater == nil {
        throw .unreadable(name: source.displayName, detail: "the inflater could not start")
      }
    }
  }

  /// Opens `path` (`-` is stdin) and the decoder over it.
  public convenience init(path: String) throws(InputError) {
    try self.init(source: try InputSource(path: path))
  }

  /// Hands the source's hashing to `hasher` and lends it raw chunks from the next read on,
  /// rotating through several buffers as a reader made with a lender does.
  func startLending(to hasher: any RawInputHasher) -> SHA256Stream {
    precondition(lender == nil)
    lender = hasher
    while inputBuffers.count < 4 {
      inputBuffers.append(.allocate(byteCount: chunkSize, alignment: 64))
      lentTickets.append(nil)
    }
    return source.handOverHashing(to: hasher)
  }

  /// The `error` of a zstd input in a build without the `ZSTD` trait (SPEC §12).
  public static let zstdNotBuilt = "zstd support not built"

  /// Whether `bytes` (an input's first four, or all of a shorter one) start a zstd stream:
  /// a frame magic `28 B5 2F FD` or a skippable frame magic `5?` `2A 4D 18`. A shorter input
  /// that is a prefix of one is a zstd stream cut inside its magic number (`28` alone counts:
  /// no JSON text starts with `(`; a skippable prefix needs two bytes, `P` alone is text).
  package static func startsZstd(_ bytes: [UInt8]) -> Bool {
    let head = bytes.prefix(4)
    guard !head.isEmpty else { return false }
    if head.count < 4 && head[head.startIndex] != 0x28 && head.count < 2 { return false }
    return isZstdMagicPrefix(Array(head))
  }

  /// Whether `bytes` (at most 4) are the start of a zstd frame or skippable frame magic.
  package static func isZstdMagicPrefix(_ bytes: [UInt8]) -> Bool {
    let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
    let skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18]
    guard bytes.count <= 4 else { return false }
    if bytes.elementsEqual(frame.prefix(bytes.count)) { return true }
    for (k, b) in bytes.enumerated() where k == 0 ? (b & 0xF0) != 0x50 : b != skippable[k] {
      return false
    }
    return true
  }

  deinit {
    if let zstd { cg_zstd_decoder_free(zstd) }
    // Lent chunks are hashed in order, so waiting for the last one waits for them all.
    if let lender, let last = lentTickets.compactMap({ $0 }).max() { lender.waitUntilHashed(last) }
    for buffer in inputBuffers { buffer.deallocate() }
  }

  /// Reads more raw bytes. With `keeping`, bytes not yet consumed stay in front.
  private func refill(keeping: Bool) throws(InputError) {
    if !keeping || inputStart == inputEnd {
      if inputBuffers.count > 1 && inputEnd > 0 {
        current = (current + 1) % inputBuffers.count
        input = inputBuffers[current]
        if let ticket = lentTickets[current] {
          lender!.waitUntilHashed(ticket)
          lentTickets[current] = nil
        }
      }
      inputStart = 0
      inputEnd = 0
    }
    let (n, ticket) = try source.readLending(
      into: UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
    if let ticket { lentTickets[current] = ticket }
    if n == 0 { sawEOF = true }
    inputEnd += n
  }

  /// Fills `buffer` with decoded bytes; returns the count, 0 only at the end of the input.
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
    precondition(buffer.count > 0)
    if pushbackStart < pushback.count {
      let n = min(buffer.count, pushback.count - pushbackStart)
      pushback.withUnsafeBytes {
        buffer.baseAddress!.copyMemory(from: $0.baseAddress! + pushbackStart, byteCount: n)
      }
      pushbackStart += n
      return n
    }
    if format == .plain {
      if inputStart < inputEnd {
        let n = min(buffer.count, inputEnd - inputStart)
        buffer.baseAddress!.copyMemory(from: input.baseAddress! + inputStart, byteCount: n)
        inputStart += n
        bytesDecoded += UInt64(n)
        return n
      }
      if sawEOF { return 0 }
      let n = try source.read(into: buffer)
      if n == 0 { sawEOF = true }
      bytesDecoded += UInt64(n)
      return n
    }
    let n = format == .zstd ? try decodeZstd(into: buffer) : try inflateSome(into: buffer)
    bytesDecoded += UInt64(n)
    return n
  }

  /// Decodes zstd frames one after another; skippable frames give nothing.
  private func decodeZstd(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
    let name = source.displayName
    let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
    while true {
      if inputStart == inputEnd && !sawEOF { try refill(keeping: false) }
      var consumed = 0
      var produced = 0
      let rc: Int32
      if inputStart == inputEnd {
        // The input has ended: what the decoder still holds, then the verdict.
        if zstdAtBoundary && zstdHead.isEmpty { return 0 }
        rc = cg_zstd_decode(zstd, nil, 0, &consumed, out, buffer.count, &produced)
        if rc < 0 {
          throw .corrupt(name: name, detail: String(cString: cg_zstd_decoder_error(zstd)))
        }
        if rc == 1 {
          zstdAtBoundary = true
          zstdHead = []
        }
        if produced > 0 || rc == 1 { return produced }
        if zstdAtBoundary || DecodingReader.isZstdMagicPrefix(zstdHead) {
          throw .truncated(name: name)
        }
        throw .corrupt(name: name, detail: "bytes after the last zstd frame that are not a frame")
      }
      let base = input.baseAddress!.assumingMemoryBound(to: UInt8.self) + inputStart
      rc = cg_zstd_decode(
        zstd, base, inputEnd - inputStart, &consumed, out, buffer.count, &produced)
      if zstdHead.count < 4 && consumed > 0 {
        zstdHead += UnsafeBufferPointer(start: base, count: min(consumed, 4 - zstdHead.count))
      }
      inputStart += consumed
      if rc < 0 {
        throw .corrupt(name: name, detail: String(cString: cg_zstd_decoder_error(zstd)))
      }
      if rc == 1 {
        zstdAtBoundary = true
        zstdHead = []
      } else if consumed > 0 {
        zstdAtBoundary = false
      }
      if produced > 0 { return produced }
    }
  }

  private func inflateSome(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
    let name = source.displayName
    while true {
      if inputStart == inputEnd && !sawEOF && state != .done {
        try refill(keeping: false)
      }
      switch state {
      case .done:
        return 0
      case .member:
        if inputStart == inputEnd && sawEOF { throw .truncated(name: name) }
        let (consumed, produced, result) = inflater!.inflate(
          UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd]), into: buffer)
        inputStart += consumed
        switch result {
        case .streamEnd:
          state = .betweenMembers
        case .progress:
          break
        case .error(let detail):
          throw .corrupt(name: name, detail: detail)
        }
        if produced > 0 { return produced }
      case .betweenMembers:
        if inputStart == inputEnd {
          if sawEOF {
            state = .done
            return 0
          }
          continue
        }
        if input[inputStart] == 0 {
          state = .padding
        } else {
          // Another member follows; zlib checks its magic and header.
          inflater!.reset()
          state = .member
        }
      case .padding:
        while inputStart < inputEnd {
          if input[inputStart] != 0 {
            throw .corrupt(name: name, detail: "non-gzip bytes after NUL padding")
          }
          inputStart += 1
        }
        if sawEOF {
          warnings.append("\(name): trailing NUL padding after the last gzip member ignored")
          state = .done
          return 0
        }
      }
    }
  }
}

/// What an inflate call reached.
enum InflateResult {
  case progress, streamEnd
  case error(String)
}

/// Inflates gzip members, checking header, CRC-32 and ISIZE; ``reset()`` starts the next
/// member.
protocol GzipInflater: AnyObject {
  func reset()
  /// Inflates from `input` into `output`; returns bytes consumed and produced.
  func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    -> (consumed: Int, produced: Int, result: InflateResult)
}

/// ISA-L's inflate (the `ISAL` trait): about 2.6 times zlib's speed here. The member header
/// is parsed here (``GzipHeaderParser``); ISA-L inflates the deflate data and checks the
/// trailer.
final class IsalInflater: GzipInflater {
  private let state: OpaquePointer
  private var header = GzipHeaderParser()

  init?() {
    guard let state = cg_isal_inflater_new() else { return nil }
    self.state = state
  }

  deinit {
    cg_isal_inflater_free(state)
  }

  func reset() {
    cg_isal_inflater_reset(state)
    header = GzipHeaderParser()
  }

  func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    -> (consumed: Int, produced: Int, result: InflateResult)
  {
    let (skipped, stop) = header.consume(input)
    if let stop { return (skipped, 0, stop) }
    let body = UnsafeRawBufferPointer(rebasing: input[skipped...])
    var consumed = 0
    var produced = 0
    let rc = cg_isal_inflate(
      state, body.baseAddress?.assumingMemoryBound(to: UInt8.self), body.count, &consumed,
      output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count, &produced)
    consumed += skipped
    if rc < 0 { return (consumed, produced, .error(String(cString: cg_isal_error(rc)))) }
    return (consumed, produced, rc == 1 ? .streamEnd : .progress)
  }
}

/// An RFC 1952 member header, fed in pieces of any size: magic, method, flags (reserved bits
/// must be clear), the optional extra field, name and comment, and the header CRC when
/// FHCRC is set.
struct GzipHeaderParser {
  private enum Step { case fixed, extraLength, extra, name, comment, headerCRC, done }

  private var step = Step.fixed
  private var flags: UInt8 = 0
  /// Bytes still wanted by a fixed-size step.
  private var remaining = 10
  private var field: UInt32 = 0
  private var fieldBytes = 0
  /// CRC-32 of the header bytes so far, for FHCRC.
  private var crc: UInt32 = 0

  var isComplete: Bool { step == .done }

  /// The inflaters' first step on every call: header bytes taken from the front of `input`,
  /// and a result to return at once while the header is bad or not yet complete (nil once
  /// the body can be inflated).
  mutating func consume(_ input: UnsafeRawBufferPointer) -> (Int, InflateResult?) {
    if isComplete { return (0, nil) }
    let (n, problem) = feed(input)
    if let problem { return (n, .error(problem)) }
    return (n, isComplete ? nil : .progress)
  }

  /// Consumes header bytes from the front of `input`: how many, and a problem if the header
  /// is bad.
  mutating func feed(_ input: UnsafeRawBufferPointer) -> (Int, String?) {
    var i = 0
    while i < input.count && step != .done {
      let c = input[i]
      i += 1
      if step != .headerCRC {
        withUnsafeBytes(of: c) { crc = CRC32.update(crc, $0) }
      }
      switch step {
      case .fixed:
        // Each byte is judged as it comes: garbage after the last member is corrupt even
        // when it is shorter than a header.
        switch 10 - remaining {
        case 0: if c != 0x1f { return (i, "incorrect header check") }
        case 1: if c != 0x8b { return (i, "incorrect header check") }
        case 2: if c != 8 { return (i, "unknown compression method") }
        case 3:
          flags = c
          if flags & 0xE0 != 0 { return (i, "unknown header flags set") }
        default: break
        }
        remaining -= 1
        if remaining == 0 { advance(after: .fixed) }
      case .extraLength:
        field |= UInt32(c) << (8 * UInt32(fieldBytes))
        fieldBytes += 1
        if fieldBytes == 2 {
          remaining = Int(field)
          if remaining == 0 { advance(after: .extra) } else { step = .extra }
        }
      case .extra:
        remaining -= 1
        if remaining == 0 { advance(after: .extra) }
      case .name:
        if c == 0 { advance(after: .name) }
      case .comment:
        if c == 0 { advance(after: .comment) }
      case .headerCRC:
        field |= UInt32(c) << (8 * UInt32(fieldBytes))
        fieldBytes += 1
        if fieldBytes == 2 {
          guard field == crc & 0xFFFF else { return (i, "header crc mismatch") }
          step = .done
        }
      case .done:
        break
      }
    }
    return (i, nil)
  }

  /// The next step after `finished`, skipping the parts the flags leave out.
  private mutating func advance(after finished: Step) {
    field = 0
    fieldBytes = 0
    let order: [(Step, UInt8)] = [
      (.extraLength, 0x04), (.name, 0x08), (.comment, 0x10), (.headerCRC, 0x02),
    ]
    let from: Int =
      switch finished {
      case .fixed: 0
      case .extraLength, .extra: 1
      case .name: 2
      case .comment: 3
      default: 4
      }
    for (next, bit) in order[from...] where flags & bit != 0 {
      step = next
      return
    }
    step = .done
  }
}

/// A zlib inflate stream for gzip members. The `z_stream` lives at a fixed heap address
/// because zlib keeps a pointer back to it and checks it on every call.
///
/// zlib inflates raw deflate only; the header is ours (``GzipHeaderParser``), and so are the
/// CRC-32 and ISIZE checks of the trailer, because zlib's own CRC-32 ran at 4.3 GB/s and
/// took a tenth of the reading thread, where a carry-less-multiply fold runs at 14.6 GB/s
/// (``CRC32``). zlib never consumes a whole byte past the end of a raw deflate stream, so
/// the trailer is read from the input that follows.
final class ZlibInflater: GzipInflater {
  private let stream: UnsafeMutablePointer<z_stream>
  private var header = GzipHeaderParser()
  private var inTrailer = false
  private var crc: UInt32 = 0
  private var size: UInt32 = 0
  private var trailer: UInt64 = 0
  private var trailerBytes = 0

  init?() {
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let rc = inflateInit2_(stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    if rc != Z_OK {
      stream.deallocate()
      return nil
    }
  }

  deinit {
    inflateEnd(stream)
    stream.deallocate()
  }

  func reset() {
    inflateReset(stream)
    header = GzipHeaderParser()
    inTrailer = false
    crc = 0
    size = 0
    trailer = 0
    trailerBytes = 0
  }

  /// Inflates from `input` into `output`; returns bytes consumed and produced.
  func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    -> (consumed: Int, produced: Int, result: InflateResult)
  {
    var (used, stop) = header.consume(input)
    if let stop { return (used, 0, stop) }
    var produced = 0
    if !inTrailer {
      let body = UnsafeRawBufferPointer(rebasing: input[used...])
      stream.pointee.next_in = UnsafeMutablePointer(
        mutating: body.baseAddress?.assumingMemoryBound(to: UInt8.self))
      stream.pointee.avail_in = UInt32(min(body.count, Int(UInt32.max)))
      stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
      stream.pointee.avail_out = UInt32(min(output.count, Int(UInt32.max)))
      let rc = CZlib.inflate(stream, Z_NO_FLUSH)
      used += min(body.count, Int(UInt32.max)) - Int(stream.pointee.avail_in)
      produced = min(output.count, Int(UInt32.max)) - Int(stream.pointee.avail_out)
      crc = CRC32.update(crc, UnsafeRawBufferPointer(rebasing: output[0..<produced]))
      size &+= UInt32(truncatingIfNeeded: produced)
      switch rc {
      case Z_STREAM_END:
        inTrailer = true
      case Z_OK, Z_BUF_ERROR:
        return (used, produced, .progress)
      default:
        let detail = stream.pointee.msg.map { String(cString: $0) } ?? "inflate error \(rc)"
        return (used, produced, .error(detail))
      }
    }
    while trailerBytes < 8 && used < input.count {
      trailer |= UInt64(input[used]) << UInt64(8 * trailerBytes)
      trailerBytes += 1
      used += 1
    }
    if trailerBytes < 8 { return (used, produced, .progress) }
    if UInt32(truncatingIfNeeded: trailer) != crc {
      return (used, produced, .error("incorrect data check"))
    }
    if UInt32(truncatingIfNeeded: trailer >> 32) != size {
      return (used, produced, .error("incorrect length check"))
    }
    return (used, produced, .streamEnd)
  }
}

/// The gzip CRC-32: folded with carry-less multiplication where the CPU has it, zlib for the
/// rest.
enum CRC32 {
  static let fast = cg_crc32_fast_available() != 0

  static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
    var c = crc
    var done = 0
    if fast && bytes.count >= 64 {
      done = bytes.count & ~15
      c = cg_crc32_fold(c, base.assumingMemoryBound(to: UInt8.self), done)
    }
    if done < bytes.count {
      c = UInt32(
        truncatingIfNeeded: crc32(
          UInt(c), (base + done).assumingMemoryBound(to: Bytef.self), UInt32(bytes.count - done)))
    }
    return c
  }
}
