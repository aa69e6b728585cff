// Queues.swift: the spin lock, the intrusive FIFO lists (run lists and wait queues) and the
// per-kthread lock-free run queue with half-stealing.
import CUThreads
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A uthread's control block; see cjunction.h.
@usableFromInline typealias UT = UnsafeMutablePointer<cj_uthread>

/// The libraries' one short-section lock: test-and-test-and-set, for critical sections
/// that never park (a uthread holding it is descheduled only by the kernel). Store it in
/// the object whose state it guards (`let lock = SpinLock()`) and take it with
/// ``withLock(_:)``; a waiter spins with `pause` and yields the CPU after a while, so a
/// holder that the kernel preempted (or that blocks in a short host call) gets to run.
/// UThreads' parking primitives (``Mutex``, ``RWLock``, ``Condition``) are built on it.
@frozen
public struct SpinLock: ~Copyable, Sendable {
    @usableFromInline let word = Atomic<UInt32>(0)

    @inlinable public init() {}

    @inlinable
    public borrowing func lock() {
        if word.exchange(1, ordering: .acquiring) != 0 { lockContended() }
    }

    @usableFromInline @inline(never)
    borrowing func lockContended() {
        repeat {
            var spins = 0
            while word.load(ordering: .relaxed) != 0 {
                cj_cpu_relax()
                spins &+= 1
                if spins > 100 { sched_yield(); spins = 0 }   // on 2 cores a holder the host preempted needs our CPU
            }
        } while word.exchange(1, ordering: .acquiring) != 0
    }

    @inlinable
    public borrowing func unlock() { word.store(0, ordering: .releasing) }

    /// Runs `body` with the lock held.
    @inlinable
    public borrowing func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// State guarded by its own ``SpinLock``, for state shared by reference (captured by
/// escaping closures): what the lock guards is part of the type, reached only through
/// `withLock { (inout State) in }`.
public final class Locked<State>: @unchecked Sendable {
    @usableFromInline let lock = SpinLock()
    @usableFromInline var state: State

    public init(_ state: State) { self.state = state }

    @inlinable
    public func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try lock.withLock { () throws(E) -> R in try body(&state) }
    }
}

/// A FIFO of uthreads linked through `link` (inboxes and the global queue). Not locked:
/// the owner holds a SpinLock around it.
@usableFromInline
struct RunList {
    @usableFromInline var head: UT? = nil
    @usableFromInline var tail: UT? = nil
    @usableFromInline var count = 0

    @inlinable init() {}

    @inlinable
    mutating func append(_ t: UT) {
        t.pointee.link = nil
        if let tl = tail { tl.pointee.link = t } else { head = t }
        tail = t
        count += 1
    }

    @inlinable
    mutating func popFirst() -> UT? {
        guard let h = head else { return nil }
        head = h.pointee.link
        if head == nil { tail = nil }
        h.pointee.link = nil
        count -= 1
        return h
    }

    /// Takes the whole list, leaving this one empty.
    @inlinable
    mutating func takeAll() -> RunList {
        let all = self
        self = RunList()
        return all
    }
}

/// A FIFO of waiting uthreads linked through `wait_next`/`wait_prev`, with removal from
/// the middle (a timed-out waiter leaves). Protected by its owner's SpinLock.
@usableFromInline
struct WaitQueue {
    @usableFromInline var head: UT? = nil
    @usableFromInline var tail: UT? = nil

    @inlinable init() {}

    @inlinable var isEmpty: Bool { head == nil }

    @inlinable
    mutating func append(_ t: UT) {
        t.pointee.wait_next = nil
        t.pointee.wait_prev = tail
        if let tl = tail { tl.pointee.wait_next = t } else { head = t }
        tail = t
        t.pointee.in_wait_queue = 1
    }

    @inlinable
    mutating func remove(_ t: UT) {
        require(t.pointee.in_wait_queue == 1, "UThreads internal error: removing a uthread that is not waiting")
        let n = t.pointee.wait_next, p = t.pointee.wait_prev
        if let p { p.pointee.wait_next = n } else { head = n }
        if let n { n.pointee.wait_prev = p } else { tail = p }
        t.pointee.wait_next = nil
        t.pointee.wait_prev = nil
        t.pointee.in_wait_queue = 0
    }

    @inlinable
    mutating func popFirst() -> UT? {
        guard let h = head else { return nil }
        remove(h)
        return h
    }
}

/// A chain of uthreads to unpark after a lock is dropped, linked through `wait_next`
/// (free once a waiter has left its wait queue). Woken in the order pushed, so timers
/// that fire together wake in deadline order and a broadcast wakes in queue order.
@usableFromInline
struct WakeList {
    @usableFromInline var head: UT? = nil
    @usableFromInline var tail: UT? = nil
    @usableFromInline var count = 0

    @inlinable init() {}

    @inlinable
    mutating func push(_ t: UT) {
        t.pointee.wait_next = nil
        if let tl = tail { tl.pointee.wait_next = t } else { head = t }
        tail = t
        count += 1
    }

    /// Unparks every uthread on the list, first pushed first.
    @inlinable
    consuming func wakeAll() {
        var next = head
        while let t = next {
            next = t.pointee.wait_next
            t.pointee.wait_next = nil
            Scheduler.unpark(t)
        }
    }
}

/// The per-kthread run queue: a fixed ring that only its kthread pushes to; its kthread
/// pops from the head and idle kthreads steal half of it, both with a CAS on `head`
/// (the design of Go's runq). Overflow goes to the runtime's global queue.
@usableFromInline
struct LocalRunQueue: ~Copyable {
    @usableFromInline static let capacity: UInt32 = 256

    @usableFromInline let head = Atomic<UInt32>(0)
    @usableFromInline let tail = Atomic<UInt32>(0)
    @usableFromInline let slots: UnsafeMutablePointer<Atomic<UInt>>

    init() {
        slots = .allocate(capacity: Int(Self.capacity))
        for i in 0..<Int(Self.capacity) { (slots + i).initialize(to: Atomic(0)) }
    }

    func deallocate() {
        slots.deinitialize(count: Int(Self.capacity))
        slots.deallocate()
    }

    @inlinable var approximateCount: UInt32 {
        tail.load(ordering: .acquiring) &- head.load(ordering: .acquiring)
    }

    /// Owner only. Returns false when full (the caller moves work to the global queue).
    @inlinable
    func push(_ t: UT) -> Bool {
        let h = head.load(ordering: .acquiring)
        let tl = tail.load(ordering: .relaxed)
        if tl &- h >= Self.capacity { return false }
        slots[Int(tl % Self.capacity)].store(UInt(bitPattern: t), ordering: .relaxed)
        tail.store(tl &+ 1, ordering: .releasing)
        return true
    }

    /// Owner only.
    @inlinable
    func pop() -> UT? {
        while true {
            let h = head.load(ordering: .acquiring)
            let tl = tail.load(ordering: .relaxed)
            if tl == h { return nil }
            let v = slots[Int(h % Self.capacity)].load(ordering: .relaxed)
            if head.compareExchange(expected: h, desired: h &+ 1, ordering: .acquiringAndReleasing).exchanged {
                return UT(bitPattern: v)
            }
        }
    }

    /// Owner only: removes up to half the queue (at least one) when it is full, returning
    /// them as a list for the global queue.
    func takeHalfForOverflow() -> RunList {
        var list = RunList()
        while true {
            let h = head.load(ordering: .acquiring)
            let tl = tail.load(ordering: .relaxed)
            let n = (tl &- h) / 2
            if n == 0 { return list }
            var taken: [UInt] = []
            taken.reserveCapacity(Int(n))
            for i in 0..<n { taken.append(slots[Int((h &+ i) % Self.capacity)].load(ordering: .relaxed)) }
            if head.compareExchange(expected: h, desired: h &+ n, ordering: .acquiringAndReleasing).exchanged {
                for v in taken { list.append(UT(bitPattern: v)!) }
                return list
            }
        }
    }

    /// Called by another kthread: moves half of this queue into `into` (which must be the
    /// caller's own, empty queue) and returns how many moved.
    @inlinable
    func stealHalf(into: borrowing LocalRunQueue) -> UInt32 {
        let dstTail = into.tail.load(ordering: .relaxed)
        while true {
            let h = head.load(ordering: .acquiring)
            let tl = tail.load(ordering: .acquiring)
            var n = tl &- h
            n = n &- n / 2
            if n == 0 { return 0 }
            if n > Self.capacity / 2 { continue }  // inconsistent snapshot; retry
            for i in 0..<n {
                let v = slots[Int((h &+ i) % Self.capacity)].load(ordering: .relaxed)
                into.slots[Int((dstTail &+ i) % Self.capacity)].store(v, ordering: .relaxed)
            }
            if head.compareExchange(expected: h, desired: h &+ n, ordering: .acquiringAndReleasing).exchanged {
                into.tail.store(dstTail &+ n, ordering: .releasing)
                return n
            }
        }
    }
}

/// A wait queue with its spin lock. The queue lives in its own allocation, so a waiter
/// may park while holding a pointer to it without an exclusivity access spanning the
/// park.
@usableFromInline
struct LockedWaitQueue: ~Copyable {
    @usableFromInline let lock = SpinLock()
    @usableFromInline let queue: UnsafeMutablePointer<WaitQueue>

    init() {
        queue = .allocate(capacity: 1)
        queue.initialize(to: WaitQueue())
    }

    deinit {
        queue.deinitialize(count: 1)
        queue.deallocate()
    }
}
