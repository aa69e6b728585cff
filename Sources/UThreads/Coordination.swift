// Coordination.swift: WaitGroup, Semaphore and RWLock for uthreads.
import CUThreads
import Synchronization

/// Waits for a group of tasks: `add` before starting them, `done` as each ends, `wait`
/// parks until the count is zero.
public final class WaitGroup: @unchecked Sendable {
    let count = Atomic<Int>(0)
    let waiters = LockedWaitQueue()

    public init(count: Int = 0) {
        require(count >= 0, "UThreads: WaitGroup count cannot be negative")
        self.count.store(count, ordering: .relaxed)
    }

    /// Adds `n` (which may be negative, like Go's Add) to the count.
    public func add(_ n: Int = 1) {
        let now = count.add(n, ordering: .acquiringAndReleasing).newValue
        require(now >= 0, "UThreads: WaitGroup count went negative (done() called more often than add())")
        if now == 0 { wakeWaiters() }
    }

    /// Marks one task finished.
    public func done() { add(-1) }

    private func wakeWaiters() {
        var wake = WakeList()
        waiters.lock.lock()
        while let w = Waiting.grantFirst(waiters) { wake.push(w) }
        waiters.lock.unlock()
        wake.wakeAll()
    }

    /// Parks the calling uthread until the count is zero.
    public func wait() { _ = wait(deadline: nil) }

    /// Parks until the count is zero or `timeout` passes; returns false on timeout.
    public func wait(timeout: Duration) -> Bool {
        wait(deadline: MonotonicInstant.now.advanced(by: timeout).nanoseconds)
    }

    func wait(deadline: Int64?) -> Bool {
        let (t, _) = UThread.currentControl("WaitGroup.wait()")
        return Waiting.wait(t, deadline: deadline, in: waiters, until: { count.load(ordering: .acquiring) == 0 })
    }
}

/// A counting semaphore for uthreads. `signal` hands a unit straight to the first
/// waiter (FIFO).
public final class Semaphore: @unchecked Sendable {
    let value = Atomic<Int>(0)
    let waiters = LockedWaitQueue()

    public init(value: Int) {
        require(value >= 0, "UThreads: Semaphore value cannot be negative")
        self.value.store(value, ordering: .relaxed)
    }

    /// Takes a unit without parking; returns false if none is available.
    public func tryWait() -> Bool {
        var v = value.load(ordering: .relaxed)
        while v > 0 {
            let (done, now) = value.compareExchange(expected: v, desired: v - 1, ordering: .acquiring)
            if done { return true }
            v = now
        }
        return false
    }

    /// Takes a unit, parking until one is available.
    public func wait() { _ = wait(deadline: nil) }

    /// Takes a unit, giving up after `timeout`; returns false on timeout.
    public func wait(timeout: Duration) -> Bool {
        wait(deadline: MonotonicInstant.now.advanced(by: timeout).nanoseconds)
    }

    func wait(deadline: Int64?) -> Bool {
        let (t, _) = UThread.currentControl("Semaphore.wait()")
        return Waiting.wait(t, deadline: deadline, in: waiters, until: { tryWait() })
    }

    /// Returns a unit: to the first waiter if any, else to the count.
    public func signal() {
        waiters.lock.lock()
        let w = Waiting.grantFirst(waiters)
        if w == nil { value.add(1, ordering: .releasing) }
        waiters.lock.unlock()
        if let w { Scheduler.unpark(w) }
    }

    /// Units available now (racy).
    public var available: Int { value.load(ordering: .relaxed) }
}

/// A readers-writer lock for uthreads. Writers are preferred: once a writer waits, new
/// readers queue behind it, so writers do not starve.
public final class RWLock: @unchecked Sendable {
    private static let readMode: UInt64 = 0
    private static let writeMode: UInt64 = 1

    let waiters = LockedWaitQueue()
    // Protected by waiters.lock.
    private var readers = 0
    private var writer: UInt = 0
    private var waitingWriters = 0

    public init() {}

    /// Acquires shared access.
    public func readLock() {
        let (t, _) = UThread.currentControl("RWLock.readLock()")
        waiters.lock.lock()
        require(writer != UInt(bitPattern: t), "UThreads: RWLock.readLock() by the uthread holding the write lock")
        if writer == 0 && waitingWriters == 0 {
            readers += 1
            waiters.lock.unlock()
            return
        }
        enqueue(t, mode: Self.readMode)
    }

    /// Acquires exclusive access.
    public func writeLock() {
        let (t, _) = UThread.currentControl("RWLock.writeLock()")
        waiters.lock.lock()
        require(writer != UInt(bitPattern: t), "UThreads: RWLock.writeLock() by the uthread already holding it")
        if writer == 0 && readers == 0 {
            writer = UInt(bitPattern: t)
            waiters.lock.unlock()
            return
        }
        waitingWriters += 1
        enqueue(t, mode: Self.writeMode)
    }

    /// Releases shared access.
    public func readUnlock() {
        waiters.lock.lock()
        require(readers > 0, "UThreads: RWLock.readUnlock() without a read lock held")
        readers -= 1
        var wake = WakeList()
        if readers == 0 { grant(&wake) }
        waiters.lock.unlock()
        wake.wakeAll()
    }

    /// Releases exclusive access. Only the writer may call it.
    public func writeUnlock() {
        let (t, _) = UThread.currentControl("RWLock.writeUnlock()")
        waiters.lock.lock()
        require(writer == UInt(bitPattern: t), "UThreads: RWLock.writeUnlock() by a uthread that does not hold the write lock")
        writer = 0
        var wake = WakeList()
        grant(&wake)
        waiters.lock.unlock()
        wake.wakeAll()
    }

    public func withReadLock<R>(_ body: () throws -> R) rethrows -> R {
        readLock()
        defer { readUnlock() }
        return try body()
    }

    public func withWriteLock<R>(_ body: () throws -> R) rethrows -> R {
        writeLock()
        defer { writeUnlock() }
        return try body()
    }

    /// Called with the lock held and nobody holding the RWLock's write side: hands it to
    /// the first waiting writer, or to every reader at the head of the queue.
    private func grant(_ wake: inout WakeList) {
        guard let first = waiters.queue.pointee.head else { return }
        if first.pointee.user_word == Self.writeMode {
            guard readers == 0 else { return }
            _ = Waiting.grantFirst(waiters)
            waitingWriters -= 1
            writer = UInt(bitPattern: first)
            wake.push(first)
            return
        }
        while let r = waiters.queue.pointee.head, r.pointee.user_word == Self.readMode {
            _ = Waiting.grantFirst(waiters)
            readers += 1
            wake.push(r)
        }
    }

    private func enqueue(_ t: UT, mode: UInt64) {
        t.pointee.granted = 0
        t.pointee.user_word = mode
        waiters.queue.pointee.append(t)
        waiters.lock.unlock()
        _ = Waiting.waitGranted(t, deadline: nil, in: waiters)
    }
}
