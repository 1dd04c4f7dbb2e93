#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One mutex with several condition variables, so that each kind of waiter is woken only by
/// the events it waits for.
///
/// With a single condition every event woke every sleeping thread: a finished block woke the
/// other worker and the reading thread as well as the writer, and the threads woken for
/// nothing went back to sleep after taking the lock in turn. On two cores those wake-ups
/// also preempted the thread doing real work.
///
/// `@unchecked Sendable`: the pthread objects are made for sharing between threads; they live
/// at fixed heap addresses for the monitor's lifetime.
final class Monitor: @unchecked Sendable {
  /// A condition of a monitor, by position: 0 up to the count the monitor was made with.
  struct Condition {
    let index: Int
    init(_ index: Int) { self.index = index }
  }

  private let mutex: UnsafeMutablePointer<pthread_mutex_t>
  private let conditions: UnsafeMutablePointer<pthread_cond_t>
  private let count: Int

  init(conditions count: Int) {
    self.count = count
    mutex = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    conditions = .allocate(capacity: count)
    for k in 0..<count { pthread_cond_init(conditions + k, nil) }
  }

  deinit {
    for k in 0..<count { pthread_cond_destroy(conditions + k) }
    conditions.deallocate()
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  func lock() { pthread_mutex_lock(mutex) }
  func unlock() { pthread_mutex_unlock(mutex) }

  /// Waits on `condition`; the caller holds the lock and rechecks its predicate after.
  func wait(_ condition: Condition) { pthread_cond_wait(cond(condition), mutex) }
  /// Wakes one waiter of `condition`.
  func signal(_ condition: Condition) { pthread_cond_signal(cond(condition)) }
  /// Wakes every waiter of `condition`.
  func broadcast(_ condition: Condition) { pthread_cond_broadcast(cond(condition)) }

  private func cond(_ condition: Condition) -> UnsafeMutablePointer<pthread_cond_t> {
    precondition(condition.index >= 0 && condition.index < count, "no such condition")
    return conditions + condition.index
  }
}
