/// Room for unescaped user ids: a raw region that does not move between resets, so the ids
/// of a whole block can be looked up together after the block was examined.
public final class IdScratch {
  // One thread's scratch, touched once per record: no accesses overlap, so the runtime's
  // exclusivity check is off.
  @exclusivity(unchecked) private var base: UnsafeMutableRawPointer
  @exclusivity(unchecked) private var capacity: Int
  @exclusivity(unchecked) private var used = 0

  public init(capacity: Int = 4096) {
    self.capacity = capacity
    base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
  }

  deinit {
    base.deallocate()
  }

  /// Forgets every id and makes room for `capacity` bytes: the length of the records to be
  /// examined, which no unescaped id exceeds.
  public func reset(capacity wanted: Int) {
    used = 0
    if wanted > capacity {
      base.deallocate()
      capacity = max(wanted, capacity * 2)
      base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }
  }

  func append(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
    precondition(used + bytes.count <= capacity, "IdScratch reset with too little room")
    let start = base + used
    bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    used += bytes.count
    return UnsafeRawBufferPointer(start: start, count: bytes.count)
  }
}
