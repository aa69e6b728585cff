// UThread.swift: the public face of a uthread: spawn from a uthread, yield, park/unpark,
// sleep with cancellation, references and joinable handles.
import CUThreads
import Synchronization

/// The type-erased part of a `JoinHandle`: what the scheduler runs.
public class AnyEntryBox {
    @usableFromInline init() {}
    func run() { fatalError("abstract") }
}

/// Why ``UThread/wait(until:)`` returned.
public enum WaitOutcome: Sendable, Equatable { case woken, timedOut, interrupted }

/// How a sleep ended.
public enum SleepResult: Sendable, Equatable {
    /// The deadline passed.
    case completed
    /// `UThreadRef.interrupt()` ended it early; its timer was cancelled.
    case interrupted
}

/// A reference to a uthread, for waking it. Valid while the uthread runs or a
/// `JoinHandle` for it exists.
public struct UThreadRef: Sendable, Hashable, CustomStringConvertible {
    @usableFromInline let raw: UInt
    /// The uthread's id, unique within its runtime.
    public let id: UInt64

    @usableFromInline
    init(_ t: UT) {
        raw = UInt(bitPattern: t)
        id = t.pointee.id
    }

    @usableFromInline var control: UT { UT(bitPattern: raw)! }

    /// Makes the uthread runnable if it is parked, or lets its next `park()` return at
    /// once. Callable from any thread.
    @inlinable
    public func unpark() { Scheduler.unpark(control) }

    /// Ends a `UThread.sleep` or a `WaitTable.wait` early (they return `.interrupted`),
    /// or the next one if the uthread is not waiting now. Other waits see it through
    /// `UThread.takeInterrupt()`. This is how a library OS makes a blocking call return
    /// EINTR when a signal arrives.
    public func interrupt() {
        cj_store_release_u8(&control.pointee.interrupted, 1)
        Scheduler.unpark(control)
    }

    public var description: String { "uthread \(id)" }
}

/// A spawned uthread: its body, and once it returns, its result. `join()` waits for it
/// (once); dropping every reference without joining detaches the uthread.
public final class JoinHandle<T>: AnyEntryBox, @unchecked Sendable {
    // Each field is written once: `thread` by the spawner, `body` and `resultStorage`
    // by the uthread, read by the joiner after the uthread finished (ordered by `done`).
    // No dynamic exclusivity checks are needed, and none are paid.
    @exclusivity(unchecked) @usableFromInline var thread: UT!
    @exclusivity(unchecked) var body: (() -> T)?
    /// The result, in its own allocation (none for zero-sized results such as Void):
    /// the uthread's unspecialised `run` then needs only T's metadata, not Optional<T>'s,
    /// which would cost a runtime metadata lookup per spawn.
    @exclusivity(unchecked) @usableFromInline var resultStorage: UnsafeMutableRawPointer?
    let runtime: Runtime
    @usableFromInline let joined = Atomic<Bool>(false)

    @usableFromInline
    init(_ body: @escaping () -> T, runtime: Runtime) {
        self.body = body
        self.runtime = runtime
        super.init()
    }

    override func run() {
        let value = body.unsafelyUnwrapped()
        body = nil
        if MemoryLayout<T>.size == 0 { return }
        let p = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        p.initializeMemory(as: T.self, to: value)
        resultStorage = p
    }

    /// The uthread, for unpark/interrupt.
    public var uthread: UThreadRef { UThreadRef(thread) }

    /// True once the uthread's body returned.
    public var isFinished: Bool { cj_load_acquire_u32(&thread.pointee.done) != 0 }

    /// Waits for the uthread to finish and returns its result. From a uthread, parks it;
    /// from an OS thread, blocks that thread on a futex. Call it once.
    @inlinable
    public func join() -> T {
        require(!joined.exchange(true, ordering: .acquiringAndReleasing),
                "UThreads: JoinHandle.join() called twice for uthread \(thread.pointee.id)")
        waitForExit()
        if MemoryLayout<T>.size == 0 {
            return zeroSizedStorage.load(as: T.self)
        }
        let p = resultStorage.unsafelyUnwrapped
        resultStorage = nil
        let value = p.assumingMemoryBound(to: T.self).move()
        p.deallocate()
        return value
    }

    @usableFromInline
    func waitForExit() {
        let t: UT = thread
        if cj_load_acquire_u32(&t.pointee.done) == 1 { return }
        if let k = KT.current, let me = k.pointee.area.current {
            require(me != t, "UThreads: a uthread cannot join itself")
            let slot = UnsafeMutableRawPointer(t.pointer(to: \.joiner)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            if cj_cas_ptr(slot, nil, UnsafeMutableRawPointer(me)) {
                while cj_load_acquire_u32(&t.pointee.done) != 1 { Scheduler.park(me, KT.currentFast) }
            }
        } else {
            // An OS thread (or a kthread's scheduler context) waits on the futex word.
            _ = cj_cas_u32(&t.pointee.done, 0, 2)
            while cj_load_acquire_u32(&t.pointee.done) != 1 { _ = cj_futex_wait(&t.pointee.done, 2, -1) }
        }
    }

    deinit {
        if let p = resultStorage {
            p.assumingMemoryBound(to: T.self).deinitialize(count: 1)
            p.deallocate()
        }
        Scheduler.release(thread)
    }
}

/// Where zero-sized results are "loaded" from (a load of a zero-sized type reads nothing).
@usableFromInline nonisolated(unsafe) let zeroSizedStorage = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)

/// Operations on the calling uthread.
public enum UThread {
    /// True when the caller runs on a uthread.
    @inlinable
    public static var isInUThread: Bool {
        guard let k = KT.current else { return false }
        return k.pointee.area.current != nil
    }

    @inline(__always) @usableFromInline
    static func currentControl(_ what: StaticString) -> (UT, KT) {
        guard let k = KT.current, let t = k.pointee.area.current else {
            misuse("UThread.\(what) must be called from a uthread")
        }
        return (t, k)
    }

    /// The calling uthread.
    public static var current: UThreadRef { UThreadRef(currentControl("current").0) }

    /// Uthreads waiting to run on the caller's kthread (approximate; 0 outside a
    /// runtime). I/O layers use it to batch submissions while other work is queued.
    public static var runnableOnCurrentKThread: Int {
        guard let k = KT.current else { return 0 }
        return Int(k.pointee.runq.approximateCount) + k.pointee.inboxCount.load(ordering: .relaxed)
    }

    /// True when the caller is a uthread of `runtime`.
    public static func isOn(_ runtime: Runtime) -> Bool {
        guard let k = KT.current, k.pointee.area.current != nil else { return false }
        return k.pointee.runtime == runtime.core
    }

    /// Index of the kthread the caller runs on, or nil outside a runtime.
    public static var kthreadIndex: Int? { KT.current.map { $0.pointee.index } }

    /// Runs the poll hooks of the caller's kthread once, as its scheduler loop does between
    /// uthreads; returns the work they reported (0 outside a runtime). For a uthread that
    /// polls without ever parking (an emulated epoll_wait with a zero timeout that finds
    /// nothing, in a loop): the scheduler loop, the hooks' usual caller, does not run
    /// while such a uthread keeps the kthread, so the frames it waits for would sit in a
    /// device queue. With `every: n`, only every n-th call on this kthread runs them (for
    /// a caller on a hot path: a wait that returns events at once, again and again). Not
    /// from inside a hook.
    public static func runPollHooks(every n: UInt32 = 1) -> Int {
        guard let k = KT.current, k.pointee.area.current != nil else { return 0 }
        k.pointee.hookPollCalls &+= 1
        if n > 1, k.pointee.hookPollCalls % n != 0 { return 0 }
        return Scheduler.runHooks(k)
    }

    /// Lets other runnable uthreads run; returns at once if there are none.
    @inlinable
    public static func yield() {
        let (t, k) = currentControl("yield()")
        k.pointee.tick &+= 1
        // What waits for this kthread outside its local queue (a due timer's uthread, the
        // inbox; the global queue when nothing is local) is queued ahead of this one:
        // switching straight from queue to queue, the scheduler loop that fires timers
        // runs only every 64th switch, and threads preempted in a loop (they yield again
        // and again) would starve a sleeper. Nothing at all to run: go on.
        if !Scheduler.gatherForYield(k) && k.pointee.tick % slowPathInterval != 0 { return }
        Scheduler.pushLocal(t, k)
        Scheduler.switchAway(t, k)
    }

    /// Parks the calling uthread until `UThreadRef.unpark()`. An unpark that came
    /// earlier makes it return at once; it may also return spuriously, so call it in a
    /// loop that checks the condition waited for.
    @inlinable
    public static func park() {
        let (t, k) = currentControl("park()")
        Scheduler.park(t, k)
    }

    /// Parks until unparked or `deadline`. Returns true if the deadline ended it.
    @discardableResult
    public static func park(until deadline: MonotonicInstant) -> Bool {
        let (t, k) = currentControl("park(until:)")
        return Scheduler.park(t, k, until: deadline.nanoseconds)
    }

    /// The one way a blocking call waits with a deadline and an interrupt: parks the
    /// calling uthread (enrolled first where its waker finds it) until it is unparked,
    /// `deadline` (nil: none) passes, or ``UThreadRef/interrupt()`` is called for it (the
    /// request is consumed). A wake-up at or after the deadline counts as timed out; the
    /// caller re-checks its own condition before trusting the outcome.
    public static func wait(until deadline: MonotonicInstant?) -> WaitOutcome {
        var timedOut = false
        if let deadline { timedOut = park(until: deadline) } else { park() }
        if takeInterrupt() { return .interrupted }
        if timedOut || deadline.map({ MonotonicInstant.now >= $0 }) == true { return .timedOut }
        return .woken
    }

    /// Sleeps for `duration` on the kthread's timer heap.
    @discardableResult
    public static func sleep(for duration: Duration) -> SleepResult {
        sleep(until: MonotonicInstant.now.advanced(by: duration))
    }

    /// Sleeps until `deadline`, or until `interrupt()` cancels the sleep.
    @discardableResult
    public static func sleep(until deadline: MonotonicInstant) -> SleepResult {
        let (t, _) = currentControl("sleep(until:)")
        while true {
            if cj_exchange_u8(&t.pointee.interrupted, 0) != 0 { return .interrupted }
            if cj_monotonic_ns() >= deadline.nanoseconds { return .completed }
            if Scheduler.park(t, KT.currentFast, until: deadline.nanoseconds) {
                return .completed
            }
        }
    }

    /// Whether `interrupt()` was called for the calling uthread since the last check;
    /// clears the request. Waits that can be interrupted call it after each wake-up.
    public static func takeInterrupt() -> Bool {
        let (t, _) = currentControl("takeInterrupt()")
        return cj_exchange_u8(&t.pointee.interrupted, 0) != 0
    }

    /// Ends the calling uthread now, from any depth (its join handle reports it finished;
    /// a non-Void result is then missing, so use it with Void uthreads). Swift values
    /// held by the frames being abandoned are not released.
    public static func exitCurrent() -> Never {
        let (t, _) = currentControl("exitCurrent()")
        Scheduler.exit(t)
    }

    /// Spawns a uthread on the caller's runtime (queued on the caller's kthread).
    @inlinable
    public static func spawn<T>(_ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
        let (_, k) = currentControl("spawn(_:)")
        return Unmanaged<Runtime>.fromOpaque(k.pointee.runtime.pointee.owner.unsafelyUnwrapped)
            ._withUnsafeGuaranteedRef { $0.spawn(body) }
    }
}
