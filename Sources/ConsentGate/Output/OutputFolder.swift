import Crypto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A folder the tool writes into, held open by descriptor so that every later step works on
/// the folder that was checked, not on whatever its path names by then (SPEC §8).
///
/// Every file is created, renamed, read and removed relative to the descriptor: a link
/// planted inside the folder is never followed, and a subfolder is opened with
/// `O_NOFOLLOW`, so a link at `kept/` is refused instead of written through.
///
/// Owns a file descriptor, so it is a class; its state never changes after `init`.
public final class OutputFolder: Sendable {
  /// The folder's path as given, for messages.
  public let path: String
  let fd: Int32

  /// Opens `path`, which may itself be a symbolic link (the user named it).
  public init(path: String) throws(OutputError) {
    self.path = path
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 { throw OutputError(path: path, detail: InputSource.errnoText()) }
  }

  private init(path: String, fd: Int32) {
    self.path = path
    self.fd = fd
  }

  deinit { close(fd) }

  /// The subfolder `name`, created if missing. A link or anything but a real directory
  /// there is an error: it is never followed.
  public func subfolder(_ name: String) throws(OutputError) -> OutputFolder {
    let full = "\(path)/\(name)"
    if mkdirat(fd, name, 0o755) != 0 && errno != EEXIST {
      throw OutputError(path: full, detail: InputSource.errnoText())
    }
    let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    if sub < 0 {
      // ELOOP for a link, ENOTDIR for a file: say what it is, not the errno.
      let kind = entryKind(name)
      let detail = kind == .other ? InputSource.errnoText() : "is \(kind.text), not a folder"
      throw OutputError(path: full, detail: detail)
    }
    return OutputFolder(path: full, fd: sub)
  }

  enum EntryKind {
    case missing, directory, link, other
    var text: String {
      switch self {
      case .missing: "missing"
      case .directory: "a folder"
      case .link: "a symbolic link"
      case .other: "not a folder"
      }
    }
  }

  /// What `name` is, without following a link.
  func entryKind(_ name: String) -> EntryKind {
    var info = stat()
    guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return .missing }
    switch info.st_mode & S_IFMT {
    case S_IFDIR: return .directory
    case S_IFLNK: return .link
    default: return .other
    }
  }

  /// Fails, naming the first one, unless each of `names` is missing or a real directory.
  /// Touches nothing.
  public func requireRealFolders(_ names: [String]) throws(OutputError) {
    for name in names {
      let kind = entryKind(name)
      guard kind == .missing || kind == .directory else {
        throw OutputError(path: "\(path)/\(name)", detail: "is \(kind.text), not a folder")
      }
    }
  }

  /// The names of the entries (not `.` and `..`).
  func entries() -> [String] {
    // fdopendir takes ownership of the descriptor it is given: hand it a copy.
    let copy = dup(fd)
    guard copy >= 0, let dir = fdopendir(copy) else {
      if copy >= 0 { close(copy) }
      return []
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names
  }

  /// Removes the entry `name` if it is not a folder; a link is removed as a link.
  @discardableResult
  public func remove(_ name: String) -> Bool {
    unlinkat(fd, name, 0) == 0
  }

  /// Removes every entry but folders and those `keeping` names. Never descends.
  public func removeAll(keeping: Set<String> = []) {
    for name in entries() where !keeping.contains(name) { remove(name) }
  }

  /// Opens `name` for reading when it is a regular file, without following a link.
  func openRegularFile(_ name: String) -> Int32? {
    let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
    guard file >= 0 else { return nil }
    var info = stat()
    guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      close(file)
      return nil
    }
    return file
  }

  /// The bytes of the regular file `name`, at most `limit` of them; nil if it is missing,
  /// not a regular file, or larger.
  func contents(of name: String, limit: Int = 1 << 20) -> [UInt8]? {
    guard let file = openRegularFile(name) else { return nil }
    defer { close(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { return nil }
      if n == 0 { return bytes }
      bytes += chunk[..<n]
      if bytes.count > limit { return nil }
    }
  }

  /// Size and SHA-256 (lowercase hex) of the regular file `name`, read in full; nil if it
  /// is missing, not a regular file, or cannot be read.
  func sizeAndSHA256(_ name: String) -> (size: UInt64, sha256: String)? {
    guard let file = openRegularFile(name) else { return nil }
    defer { close(file) }
    var hasher = SHA256()
    var size: UInt64 = 0
    // The input reader's buffer size: a larger mapped block freed would raise glibc's mmap
    // threshold above the readers' (see AffectedQuery.keepBuffersMapped).
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 64)
    defer { chunk.deallocate() }
    while true {
      let n = read(file, chunk.baseAddress, chunk.count)
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { return nil }
      if n == 0 { break }
      hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: chunk[..<n]))
      size += UInt64(n)
    }
    return (size, hexString(hasher.finalize()))
  }

  /// Creates a new file under a name nobody can predict, exclusively and without following
  /// a link: whatever was planted under any name is never opened. Returns its descriptor and
  /// name. `token` draws the name's random part (tests make it collide on purpose).
  func createTemporary(
    for name: String, token: () -> UInt64 = { .random(in: .min ... .max) }
  ) throws(OutputError) -> (fd: Int32, name: String) {
    for _ in 0..<16 {
      let temporary = ".\(name).tmp-\(String(token(), radix: 16))"
      let file = openat(
        fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
      if file >= 0 { return (file, temporary) }
      if errno != EEXIST {
        throw OutputError(path: "\(path)/\(name)", detail: InputSource.errnoText())
      }
    }
    throw OutputError(path: "\(path)/\(name)", detail: "no free temporary name")
  }

  /// Renames `from` to `to` inside this folder: a link at `to` is replaced, not followed.
  func rename(_ from: String, to: String) -> Bool {
    renameat(fd, from, fd, to) == 0
  }

  /// Makes the renames in this folder durable.
  func sync() { _ = fsync(fd) }
}
