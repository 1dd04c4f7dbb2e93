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
