import CScanKernels

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A growable, zero-filled byte region mapped straight from the kernel, for the consent
/// index's large tables.
///
/// Why not an array: at hundreds of millions of users every lookup lands on a random page,
/// and with 4 KiB pages the page-table walk costs as much as the cache miss itself. The
/// region asks for transparent huge pages (`MADV_HUGEPAGE`), grows with `mremap` (the
/// kernel moves page tables; no bytes are copied), and holds no memory it has not touched.
/// The same shape will hold a memory-mapped index file.
final class PageBuffer: @unchecked Sendable {
  private(set) var base: UnsafeMutableRawPointer
  /// Bytes mapped.
  private(set) var capacity: Int
  /// Bytes in use: the caller's business; `copy` and `shrink` keep that many.
  var count = 0

  private static let hugePage = 2 << 20

  private static func rounded(_ n: Int) -> Int {
    let page = n >= hugePage ? hugePage : Int(getpagesize())
    return max(page, (n + page - 1) / page * page)
  }

  init(capacity: Int) {
    let size = PageBuffer.rounded(capacity)
    base = PageBuffer.map(size)
    self.capacity = size
  }

  private static func map(_ size: Int) -> UnsafeMutableRawPointer {
    guard
      let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
      p != MAP_FAILED
    else {
      fatalError("out of memory: cannot map \(size) bytes for the consent index")
    }
    #if canImport(Glibc)
      // Advice only: without transparent huge pages the region still works.
      _ = madvise(p, size, MADV_HUGEPAGE)
    #endif
    return p
  }

  deinit {
    munmap(base, capacity)
  }

  /// Makes room for at least `bytes` bytes, doubling so appends stay amortized O(1).
  func reserve(_ bytes: Int) {
    guard bytes > capacity else { return }
    resize(PageBuffer.rounded(max(bytes, capacity * 2)))
  }

  /// Gives back the mapped space beyond `count`.
  func shrink() {
    let size = PageBuffer.rounded(count)
    if size < capacity { resize(size) }
  }

  private func resize(_ size: Int) {
    let p: UnsafeMutableRawPointer
    if let moved = cg_remap(base, capacity, size) {
      p = moved
      #if canImport(Glibc)
        if size > capacity { _ = madvise(p, size, MADV_HUGEPAGE) }
      #endif
    } else {
      // No mremap here (or it failed): map anew and copy.
      p = PageBuffer.map(size)
      p.copyMemory(from: base, byteCount: min(size, capacity))
      munmap(base, capacity)
    }
    base = p
    capacity = size
  }

  func copy() -> PageBuffer {
    let other = PageBuffer(capacity: capacity)
    other.base.copyMemory(from: base, byteCount: capacity)
    other.count = count
    return other
  }
}
