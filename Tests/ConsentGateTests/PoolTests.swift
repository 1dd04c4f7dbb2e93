import Crypto
import Foundation
import Testing

@testable import ConsentGate

/// The pool's writer thread hashes raw input chunks outside its lock: an input's digest must
/// wait for the last hash to finish, not only for the last chunk to be taken.
@Suite struct PoolTests {
  @Test func finishInputWaitsForTheLastChunkToBeHashed() throws {
    // Large, so that hashing it takes far longer than the pause below (~75 ms here).
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 << 20, alignment: 64)
    chunk.initializeMemory(as: UInt8.self, repeating: 0x5A)
    chunk[12345] = 0x17
    defer { chunk.deallocate() }
    let policy = try makePolicy()
    let pool = OrderedWorkPool(
      threads: 1, policy: policy, index: .loaded(try loadIndex(policy: policy)))
    defer { pool.shutDown() }
    pool.beginInputHash()
    _ = pool.hashInPlace(UnsafeRawBufferPointer(chunk))
    // The writer takes the chunk off its queue and starts hashing it; then nothing is queued.
    usleep(10_000)
    let digest = pool.finishInput()
    #expect(digest == hexString(SHA256.hash(data: UnsafeRawBufferPointer(chunk))))
  }
}
