// Mutex.swift: a uthread mutex (parks the uthread, hands the lock to the first waiter)
// and a condition variable with timed waits.
import CUThreads
import Synchronization

/// Shared waiting logic: park until a primitive sets `granted`, optionally with a
/// deadline after which the waiter leaves `queue` (under `lock`) by itself.
@usableFromInline
enum Waiting {
    /// Parks `t` until granted. Returns false if `deadline` passed first and the waiter
    /// removed itself from `queue`.
    @inline(__always) @usableFromInline
    static func waitGranted(_ t: UT, deadline: Int64?, in waiters: borrowing LockedWaitQueue) -> Bool {
        while cj_load_acquire_u8(&t.pointee.granted) == 0 {
            guard let deadline else {
                Scheduler.park(t, KT.currentFast)
                continue
            }
            if Scheduler.park(t, KT.currentFast, until: deadline) || cj_monotonic_ns() >= deadline {
                waiters.lock.lock()
                if t.pointee.granted == 0 {
                    waiters.queue.pointee.remove(t)
                    waiters.lock.unlock()
                    return false
                }
                waiters.lock.unlock()
                return true
            }
        }
        return true
    }

    /// Returns true at once if `ready()` (checked again under the queue lock, so a grant
    /// cannot slip between the check and the enqueue); otherwise queues `t` and parks it
    /// until granted. False if `deadline` passed first.
    @inline(__always) @usableFromInline
    static func wait(_ t: UT, deadline: Int64?, in waiters: borrowing LockedWaitQueue, until ready: () -> Bool) -> Bool {
        if ready() { return true }
        waiters.lock.lock()
        if ready() {
            waiters.lock.unlock()
            return true
        }
        t.pointee.granted = 0
        waiters.queue.pointee.append(t)
        waiters.lock.unlock()
        return waitGranted(t, deadline: deadline, in: waiters)
    }

    /// Hands the first waiter of `queue` what it waits for; call with `lock` held and
    /// unpark the result after unlocking.
    @inline(__always) @usableFromInline
    static func grantFirst(_ waiters: borrowing LockedWaitQueue) -> UT? {
        guard let w = waiters.queue.pointee.popFirst() else { return nil }
        cj_store_release_u8(&w.pointee.granted, 1)
        return w
    }
}

/// A mutual-exclusion lock for uthreads. Contended `lock()` parks the uthread (not the
/// kthread); `unlock()` hands the lock straight to the first waiter (FIFO).
public final class Mutex: @unchecked Sendable {
    // Tunables: spins before queueing, long enough to cover a short critical section
    // running on another kthread.
    @usableFromInline static let spinLimit = 64

    @usableFromInline static let locked: UInt32 = 1
    @usableFromInline static let waiters: UInt32 = 2

    @usableFromInline let state = Atomic<UInt32>(0)
    @usableFromInline let owner = Atomic<UInt>(0)
    @usableFromInline let waiters = LockedWaitQueue()

    public init() {}

    /// Acquires the lock, parking the calling uthread while another holds it.
    @inlinable
    public func lock() {
        let (t, _) = UThread.currentControl("Mutex.lock()")
        if state.compareExchange(expected: 0, desired: Self.locked, ordering: .acquiring).exchanged {
            owner.store(UInt(bitPattern: t), ordering: .relaxed)
            return
        }
        lockSlow(t)
    }

    /// Acquires the lock if it is free; never parks.
    @inlinable
    public func tryLock() -> Bool {
        let (t, _) = UThread.currentControl("Mutex.tryLock()")
        if state.compareExchange(expected: 0, desired: Self.locked, ordering: .acquiring).exchanged {
            owner.store(UInt(bitPattern: t), ordering: .relaxed)
            return true
        }
        return false
    }

    @usableFromInline
    func lockSlow(_ t: UT) {
        require(owner.load(ordering: .relaxed) != UInt(bitPattern: t),
                     "UThreads: Mutex.lock() by uthread \(t.pointee.id), which already holds it (not recursive)")
        for _ in 0..<Self.spinLimit {
            if state.load(ordering: .relaxed) == 0,
               state.compareExchange(expected: 0, desired: Self.locked, ordering: .acquiring).exchanged {
                owner.store(UInt(bitPattern: t), ordering: .relaxed)
                return
            }
            cj_cpu_relax()
        }
        waiters.lock.lock()
        while true {
            let s = state.load(ordering: .relaxed)
            if s & Self.locked == 0 {
                if state.compareExchange(expected: s, desired: s | Self.locked, ordering: .acquiring).exchanged {
                    waiters.lock.unlock()
                    owner.store(UInt(bitPattern: t), ordering: .relaxed)
                    return
                }
                continue
            }
            if s & Self.waiters != 0 || state.compareExchange(expected: s, desired: s | Self.waiters, ordering: .relaxed).exchanged {
                break
            }
        }
        t.pointee.granted = 0
        waiters.queue.pointee.append(t)
        waiters.lock.unlock()
        // The unlocker hands the lock over: when granted, we own it.
        while cj_load_acquire_u8(&t.pointee.granted) == 0 { Scheduler.park(t, KT.currentFast) }
        owner.store(UInt(bitPattern: t), ordering: .relaxed)
    }

    /// Releases the lock. Only its holder may call it.
    @inlinable
    public func unlock() {
        let (t, _) = UThread.currentControl("Mutex.unlock()")
        require(owner.load(ordering: .relaxed) == UInt(bitPattern: t),
                     "UThreads: Mutex.unlock() by a uthread that does not hold the mutex")
        owner.store(0, ordering: .relaxed)
        if state.compareExchange(expected: Self.locked, desired: 0, ordering: .releasing).exchanged { return }
        unlockSlow()
    }

    @usableFromInline
    func unlockSlow() {
        waiters.lock.lock()
        let w = Waiting.grantFirst(waiters)
        if w == nil {
            state.store(0, ordering: .releasing)
        } else if waiters.queue.pointee.isEmpty {
            state.store(Self.locked, ordering: .releasing)  // still held, now by w
        }
        waiters.lock.unlock()
        if let w { Scheduler.unpark(w) }
    }

    /// Runs `body` holding the lock.
    @inlinable
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// True if the calling uthread holds the lock.
    public var isHeldByCurrentUThread: Bool {
        guard let k = KT.current, let t = k.pointee.area.current else { return false }
        return owner.load(ordering: .relaxed) == UInt(bitPattern: t)
    }
}

/// A condition variable for uthreads, used with a `Mutex`.
public final class Condition: @unchecked Sendable {
    let waiters = LockedWaitQueue()

    public init() {}

    /// Atomically releases `mutex` and parks until signalled; re-acquires `mutex` before
    /// returning. May return spuriously: wait in a loop on the predicate.
    public func wait(_ mutex: Mutex) {
        _ = wait(mutex, deadline: nil)
    }

    /// Like `wait(_:)`, but gives up at `deadline`. Returns false on timeout.
    public func wait(_ mutex: Mutex, until deadline: MonotonicInstant) -> Bool {
        wait(mutex, deadline: deadline.nanoseconds)
    }

    /// Like `wait(_:)`, but gives up after `timeout`. Returns false on timeout.
    public func wait(_ mutex: Mutex, timeout: Duration) -> Bool {
        wait(mutex, deadline: MonotonicInstant.now.advanced(by: timeout).nanoseconds)
    }

    func wait(_ mutex: Mutex, deadline: Int64?) -> Bool {
        let (t, _) = UThread.currentControl("Condition.wait")
        require(mutex.owner.load(ordering: .relaxed) == UInt(bitPattern: t),
                     "UThreads: Condition.wait with a mutex the uthread does not hold")
        waiters.lock.lock()
        t.pointee.granted = 0
        waiters.queue.pointee.append(t)
        waiters.lock.unlock()
        mutex.unlock()
        let signalled = Waiting.waitGranted(t, deadline: deadline, in: waiters)
        mutex.lock()
        return signalled
    }

    /// Wakes one waiter.
    public func signal() {
        waiters.lock.lock()
        let w = Waiting.grantFirst(waiters)
        waiters.lock.unlock()
        if let w { Scheduler.unpark(w) }
    }

    /// Wakes every waiter.
    public func broadcast() {
        var wake = WakeList()
        waiters.lock.lock()
        while let w = Waiting.grantFirst(waiters) { wake.push(w) }
        waiters.lock.unlock()
        wake.wakeAll()
    }
}
