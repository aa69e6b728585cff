// KThread.swift: the state of one kernel thread of a runtime: its %gs area, run queue,
// inbox, timer heap, poll hooks, stack cache, doorbell and counters.
import CUThreads
import Synchronization

@usableFromInline typealias KT = UnsafeMutablePointer<KThread>

// Tunables.
/// Stacks kept per kthread for reuse before they go to the runtime-wide pool.
let stackCacheCapacity = 64
/// At its first idle moment `returnMemoryAfter` after uthreads ended, a kthread keeps
/// this many stacks in its cache and the runtime this many in its pool; the rest are
/// unmapped and free malloc memory goes back to the host (malloc_trim): a server whose
/// connections all ended returns to its size before them instead of keeping its peak
/// for good. At most once a second per kthread, so a busy server is not slowed.
let stackCacheIdleKeep = 8
let stackPoolIdleKeep = 16
let returnMemoryAfter: Int64 = 1_000_000_000
/// How many epoll events an idle kthread takes per wake-up.
let idleEventCapacity: Int32 = 16

/// Counters a kthread keeps about itself (read racily for statistics).
public struct KThreadStatistics: Sendable, Equatable {
    /// Index of the kthread in its runtime.
    public var index: Int
    /// Kernel thread id, for /proc/self/task/TID.
    public var tid: Int32
    /// Uthread context switches performed on this kthread.
    public var switches: UInt64
    /// Uthreads taken from other kthreads' run queues.
    public var stolen: UInt64
    /// Times the kthread slept in the kernel.
    public var sleeps: UInt64
    /// Timers that fired here.
    public var timersFired: UInt64
    /// Poll-hook invocations.
    public var polls: UInt64
}

@usableFromInline
struct KThread: ~Copyable {
    @usableFromInline var area = cj_kthread_area()
    @usableFromInline let runtime: UnsafeMutablePointer<RuntimeCore>
    @usableFromInline let index: Int
    @usableFromInline let runq = LocalRunQueue()

    // Wake-ups from other kthreads and OS threads for uthreads that live here.
    let inboxLock = SpinLock()
    var inbox = RunList()
    @usableFromInline let inboxCount = Atomic<Int>(0)

    // Timers: a binary min-heap of uthreads keyed by `deadline`.
    let timerLock = SpinLock()
    var timers: UnsafeMutablePointer<UT?>
    var timerCount = 0
    var timerCapacity = 64
    /// Earliest deadline in the heap (Int64.max when empty), readable without the lock.
    @usableFromInline let earliestTimer = Atomic<Int64>(.max)

    // Poll hooks: registered from anywhere under `hookLock`; the kthread runs a snapshot.
    let hookLock = SpinLock()
    var hooks: [PollHook] = []
    let hookVersion = Atomic<Int>(0)
    var hookSnapshot: [PollHook] = []
    var hookSnapshotVersion = 0
    let fdHooks = Atomic<Int>(0)
    /// Calls of `UThread.runPollHooks(every:)` on this kthread.
    var hookPollCalls: UInt32 = 0

    // Sleeping in the kernel.
    @usableFromInline let sleeping = Atomic<Bool>(false)
    let doorbell: Int32
    let epfd: Int32

    // Owned by this kthread only.
    @usableFromInline var tick: UInt32 = 0
    @usableFromInline var pendingRelease: UT? = nil
    var stackCache: [UT] = []
    /// When this kthread next returns memory, if idle then (.max: nothing to return).
    var returnMemoryAt: Int64 = .max
    var rng: UInt64

    // Counters.
    @usableFromInline var switches: UInt64 = 0
    var stolen: UInt64 = 0
    var sleeps: UInt64 = 0
    var timersFired: UInt64 = 0
    var polls: UInt64 = 0

    init(runtime: UnsafeMutablePointer<RuntimeCore>, index: Int, doorbell: Int32, epfd: Int32) {
        self.runtime = runtime
        self.index = index
        self.doorbell = doorbell
        self.epfd = epfd
        self.rng = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
        self.timers = .allocate(capacity: 64)
        stackCache.reserveCapacity(stackCacheCapacity)
    }

    func releaseResources() {
        runq.deallocate()
        timers.deallocate()
        Host.closeFD(doorbell)
        Host.closeFD(epfd)
    }

    mutating func nextRandom() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    var statistics: KThreadStatistics {
        KThreadStatistics(index: index, tid: area.tid, switches: switches, stolen: stolen,
                          sleeps: sleeps, timersFired: timersFired, polls: polls)
    }
}

extension UnsafeMutablePointer where Pointee == KThread {
    /// The kthread the calling OS thread is, if any (the TLS flag, then %gs).
    @inline(__always) @usableFromInline
    static var current: KT? {
        guard let a = cj_area_or_null() else { return nil }
        return a.pointee.kthread?.assumingMemoryBound(to: KThread.self)
    }

    /// The current kthread through %gs; only on a kthread.
    @inline(__always) @usableFromInline
    static var currentFast: KT {
        cj_area_gs()!.pointee.kthread.unsafelyUnwrapped.assumingMemoryBound(to: KThread.self)
    }

    /// Wakes this kthread if it sleeps in the kernel.
    @inline(__always) @usableFromInline
    func wakeIfSleeping() {
        if pointee.sleeping.load(ordering: .relaxed), pointee.sleeping.exchange(false, ordering: .acquiringAndReleasing) {
            Host.ring(pointee.doorbell)
        }
    }

    /// Queues `t` in this kthread's inbox (from any thread) and wakes it.
    func deliver(_ t: UT) {
        pointee.inboxLock.lock()
        pointee.inbox.append(t)
        pointee.inboxCount.add(1, ordering: .relaxed)
        pointee.inboxLock.unlock()
        wakeIfSleeping()
    }
}
