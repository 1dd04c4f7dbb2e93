import CCodecs
import CScanKernels
import CZlib

// The gzip side of DecodingReader: inflaters (zlib, ISA-L), the member header parser and
// CRC-32. DecodingReader drives them member by member.

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
