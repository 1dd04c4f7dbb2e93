import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Hashes an input's raw bytes on another thread, in the order they are handed over.
public protocol RawInputHasher: AnyObject {
  /// Hashes a copy of `chunk`, after every chunk handed over before it.
  func hashCopy(of chunk: UnsafeRawBufferPointer)
  /// Hashes `chunk` where it is, after every chunk handed over before it; its bytes must stay
  /// unchanged until ``waitUntilHashed(_:)`` with the returned ticket returns.
  func hashInPlace(_ chunk: UnsafeRawBufferPointer) -> Int
  /// Waits until the chunk with `ticket`, and every chunk before it, has been hashed.
  func waitUntilHashed(_ ticket: Int)
}

/// Why an input could not be read to its end.
///
/// Cases carry the input's display name and, where it helps, a short technical detail.
/// They never carry record content.
public enum InputError: Error, Equatable, Sendable {
  /// The file could not be opened or read (missing, a directory, permissions, I/O error).
  case unreadable(name: String, detail: String)
  /// A gzip stream ended before its last member was complete.
  case truncated(name: String)
  /// Bad gzip data: CRC or length mismatch, invalid deflate data, a bad header, or non-gzip
  /// bytes after a member.
  case corrupt(name: String, detail: String)

  /// The report's `status` word for this error.
  public var status: InputStatus {
    switch self {
    case .unreadable: .unreadable
    case .truncated: .truncated
    case .corrupt: .corrupt
    }
  }
}

/// The status of one input, as the report states it.
public enum InputStatus: String, Sendable {
  case ok, truncated, corrupt, unreadable
}

/// The raw bytes of one input file (or stdin), read in chunks, counted and hashed as they pass.
///
/// Owns a file descriptor, so it is a class; it is used by one thread at a time.
public final class InputSource {
  /// The name used in messages and in the quarantine `"source"` field.
  public let displayName: String
  private let fd: Int32
  private let ownsDescriptor: Bool
  private var hasher = SHA256Stream()
  /// When set, every chunk read is hashed here instead of by the built-in hasher: a pipeline
  /// hashes the input on another thread, so the reading thread only reads and inflates.
  public var rawHasher: (any RawInputHasher)?
  /// Bytes read from the file so far.
  public private(set) var bytesRead: UInt64 = 0
  /// The file's size, where it is a regular file (for progress and ETA).
  public let knownSize: UInt64?

  /// Opens `path`, or stdin when `path` is `-`.
  public init(path: String) throws(InputError) {
    if path == "-" {
      displayName = "-"
      fd = 0
      ownsDescriptor = false
      knownSize = nil
      return
    }
    displayName = InputSource.fileName(of: path)
    let opened = open(path, O_RDONLY | O_CLOEXEC)
    guard opened >= 0 else {
      throw .unreadable(name: displayName, detail: InputSource.errnoText())
    }
    var info = stat()
    guard fstat(opened, &info) == 0 else {
      close(opened)
      throw .unreadable(name: displayName, detail: InputSource.errnoText())
    }
    if (info.st_mode & S_IFMT) == S_IFDIR {
      close(opened)
      throw .unreadable(name: displayName, detail: "is a directory")
    }
    fd = opened
    ownsDescriptor = true
    knownSize = (info.st_mode & S_IFMT) == S_IFREG ? UInt64(info.st_size) : nil
  }

  deinit {
    if ownsDescriptor { close(fd) }
  }

  /// Reads up to `buffer.count` bytes; returns 0 at end of file.
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
    try read(into: buffer, lending: false).count
  }

  /// Reads like ``read(into:)``, but lends the bytes read to the ``rawHasher`` in place
  /// instead of copying them: the caller must leave them unchanged until
  /// `rawHasher.waitUntilHashed(ticket)` returns. `ticket` is nil when the bytes were hashed
  /// before returning (no `rawHasher`, or nothing read).
  public func readLending(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> (
    count: Int, ticket: Int?
  ) {
    try read(into: buffer, lending: true)
  }

  /// Reads, then hashes what was read: here, or by the ``rawHasher`` from a copy or in place.
  private func read(into buffer: UnsafeMutableRawBufferPointer, lending: Bool) throws(InputError)
    -> (count: Int, ticket: Int?)
  {
    let n = try readRaw(into: buffer)
    guard n > 0 else { return (0, nil) }
    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
    guard let rawHasher else {
      hasher.update(chunk)
      return (n, nil)
    }
    if lending { return (n, rawHasher.hashInPlace(chunk)) }
    rawHasher.hashCopy(of: chunk)
    return (n, nil)
  }

  private func readRaw(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
    while true {
      let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
      if n >= 0 {
        bytesRead += UInt64(n)
        return n
      }
      if errno == EINTR { continue }
      throw .unreadable(name: displayName, detail: InputSource.errnoText())
    }
  }

  /// Reads and hashes whatever is left, so that the report's SHA-256 covers the whole file
  /// even when decoding stopped early. Errors are ignored: the input has failed already.
  public func drain() {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    defer { scratch.deallocate() }
    while let n = try? read(into: scratch), n > 0 {}
  }

  /// Hands hashing over to `rawHasher` from the next read on, and returns the digest state of
  /// the bytes read so far for it to continue from: for an input opened and read ahead
  /// before its pipeline existed.
  func handOverHashing(to rawHasher: any RawInputHasher) -> SHA256Stream {
    precondition(self.rawHasher == nil)
    self.rawHasher = rawHasher
    return hasher
  }

  /// Lowercase hex SHA-256 of the bytes read so far (without a ``rawHasher``).
  public func sha256Hex() -> String {
    hexString(hasher.finalize())
  }

  /// The last path component, as the quarantine `"source"` field and output names use it.
  public static func fileName(of path: String) -> String {
    if path == "-" { return "-" }
    var trimmed = Substring(path)
    while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
    if let slash = trimmed.lastIndex(of: "/") {
      return String(trimmed[trimmed.index(after: slash)...])
    }
    return String(trimmed)
  }

  static func errnoText() -> String {
    String(cString: strerror(errno))
  }
}

/// Lowercase hexadecimal text of a byte sequence (digests).
public func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
  let digits: [UInt8] = Array("0123456789abcdef".utf8)
  var out: [UInt8] = []
  for b in bytes {
    out.append(digits[Int(b >> 4)])
    out.append(digits[Int(b & 15)])
  }
  return String(decoding: out, as: UTF8.self)
}
