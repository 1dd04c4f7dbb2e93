import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Pass 2 of ``IndexBuilder``: each bucket's runs mapped and folded into resolved entries,
/// the buckets shared between the cores; a bucket larger than the memory allows split first.
extension IndexBuilder {
  /// Resolves every bucket of `runs` (mapped, not copied), two at a time on a 2-core
  /// machine, into `folder/resolved-K`.
  static func resolveBuckets(
    _ runs: IndexRuns, files: Int, folder: String, limit: Int, unknownAge: UnknownAgeRule
  ) -> [Result<IndexResolver, IndexBuildError>] {
    let count = runs.bucketBytes.count
    let bucketBits = runs.bucketBits
    let (paths, bytes, records) = (
      (0..<count).map(runs.bucketPath), runs.bucketBytes, runs.bucketRecords
    )
    let results = UnsafeMutableBufferPointer<Result<IndexResolver, IndexBuildError>>.allocate(
      capacity: count)
    defer { results.deallocate() }
    // Each iteration writes only its own element.
    nonisolated(unsafe) let slots = results
    DispatchQueue.concurrentPerform(iterations: count) { k in
      let result: Result<IndexResolver, IndexBuildError>
      do throws(IndexBuildError) {
        result = .success(
          try resolveBucket(
            paths[k], bytes: bytes[k], records: records[k], files: files,
            into: "\(folder)/resolved-\(k)", bucketBits: bucketBits, limit: limit,
            unknownAge: unknownAge))
      } catch {
        result = .failure(error)
      }
      (slots.baseAddress! + k).initialize(to: result)
    }
    let out = Array(results)
    _ = results.deinitialize()
    return out
  }

  /// Resolves one bucket into `output`. A bucket larger than `limit` (the plan guessed its
  /// side files' size wrong, or the ids are skewed) is first split by the next bits of the
  /// hash into parts resolved one after another, so memory stays within the limit.
  static func resolveBucket(
    _ path: String, bytes: Int, records: Int, files: Int, into output: String,
    bucketBits: Int, limit: Int, unknownAge: UnknownAgeRule
  ) throws(IndexBuildError) -> IndexResolver {
    var resolver = IndexResolver(files: files, unknownAge: unknownAge)
    var parts = [(path: path, bytes: bytes, records: records)]
    if bytes > limit {
      parts = try split(path, bytes: bytes, bucketBits: bucketBits, limit: limit)
    }
    let fd = open(output, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw IndexBuildError(message: "cannot create \(output): \(InputSource.errnoText())")
    }
    defer { close(fd) }
    let out = SequentialWriter(fd: fd, path: output, checksummed: false)
    for part in parts {
      guard part.bytes > 0 else {
        unlink(part.path)
        continue
      }
      let input = open(part.path, O_RDONLY | O_CLOEXEC)
      guard input >= 0 else {
        throw IndexBuildError(message: "cannot read \(part.path): \(InputSource.errnoText())")
      }
      defer {
        close(input)
        unlink(part.path)
      }
      try withMapped(input, bytes: part.bytes, path: part.path) { (d) throws(IndexBuildError) in
        try resolver.resolve(d, records: part.records, into: out)
      }
    }
    try out.flush()
    return resolver
  }

  static func withMapped(
    _ fd: Int32, bytes: Int, path: String,
    _ body: (UnsafeRawBufferPointer) throws(IndexBuildError) -> Void
  ) throws(IndexBuildError) {
    guard let map = mmap(nil, bytes, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
      throw IndexBuildError(message: "cannot map \(path): \(InputSource.errnoText())")
    }
    defer { munmap(map, bytes) }
    try body(UnsafeRawBufferPointer(start: map, count: bytes))
  }

  /// Splits a bucket file into parts by the hash bits after the bucket's own, in hash order.
  static func split(_ path: String, bytes: Int, bucketBits: Int, limit: Int)
    throws(IndexBuildError) -> [(path: String, bytes: Int, records: Int)]
  {
    var bits = 1
    while bits < 8 && bytes >> bits > limit { bits += 1 }
    let count = 1 << bits
    var writers: [SequentialWriter] = []
    var parts: [(path: String, bytes: Int, records: Int)] = []
    defer { for w in writers { close(w.fd) } }
    for k in 0..<count {
      let part = "\(path).\(k)"
      let fd = open(part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else {
        throw IndexBuildError(message: "cannot create \(part): \(InputSource.errnoText())")
      }
      writers.append(
        SequentialWriter(fd: fd, path: part, bufferBytes: 256 << 10, checksummed: false))
      parts.append((part, 0, 0))
    }
    let input = open(path, O_RDONLY | O_CLOEXEC)
    guard input >= 0 else {
      throw IndexBuildError(message: "cannot read \(path): \(InputSource.errnoText())")
    }
    defer { close(input) }
    try withMapped(input, bytes: bytes, path: path) { (d) throws(IndexBuildError) in
      var o = 0
      while o < d.count {
        let (hash, end) = IndexResolver.recordSpan(d, at: o)
        let k = Int((hash << UInt64(bucketBits)) >> UInt64(64 - bits))
        try writers[k].write(UnsafeRawBufferPointer(rebasing: d[o..<end]))
        parts[k].bytes += end - o
        parts[k].records += 1
        o = end
      }
    }
    for w in writers { try w.flush() }
    unlink(path)
    return parts
  }
}
