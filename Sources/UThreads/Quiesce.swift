// Quiesce.swift: stopping the world: every other kthread of a runtime waits at a safe
// point (its scheduler loop, or a caller's own safe point such as the start of a system
// call) so that it holds no lock, while one uthread does something the others must not
// see halfway (a host fork of the whole process).
import CUThreads
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension Runtime {
    // Tunables: how long the stopper waits for the others before it goes on anyway (a
    // kthread blocked in a host call cannot answer; on a loaded machine a runnable one may wait
    // long for a CPU, so the deadline is generous), each wait's futex timeout, how long
    // the stopper waits before its first nudge, and between nudges.
    static let quiesceDeadlineNanoseconds: Int64 = 5_000_000_000
    static let quiesceWaitNanoseconds: Int64 = 1_000_000
    static let quiesceFirstNudgeNanoseconds: Int64 = 100_000
    static let quiesceNudgeIntervalNanoseconds: Int64 = 10_000_000

    /// From a uthread of this runtime: stops every other kthread at a safe point, runs
    /// `body`, and lets them go. A kthread asleep in its idle loop is stopped as it is
    /// (not woken: it holds no lock, and waking it would cost the stopper a context
    /// switch on a busy machine); one that wakes during the stop waits before doing
    /// anything. `nudge` is called if the others have not all stopped after a short
    /// while (and again every 10 ms), to bring kthreads that run code which never
    /// reaches the scheduler (application code) to a safe point.
    /// Returns whether every other kthread stopped before `body` ran.
    public func withWorldStopped<T>(nudge: () -> Void, _ body: () -> T) -> (T, Bool) {
        let rt = core
        // One stopper at a time: a second one waits as a stopped kthread, then retries.
        while !rt.pointee.quiesceRequested.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            Runtime.quiescePoint()
        }
        let others = KT.current.map { $0.pointee.runtime == rt } == true ? rt.pointee.count - 1 : rt.pointee.count
        let start = cj_monotonic_ns()
        let deadline = start &+ Self.quiesceDeadlineNanoseconds
        var all = true
        var nextNudge = start &+ Self.quiesceFirstNudgeNanoseconds
        // (A kthread that wakes moves from asleep to quiesced: the sum may dip in
        // between, never rise above the kthreads that are really stopped.)
        while rt.pointee.quiesced.load(ordering: .sequentiallyConsistent)
                + rt.pointee.quiesceAsleep.load(ordering: .sequentiallyConsistent) < others {
            let now = cj_monotonic_ns()
            if now > deadline { all = false; break }
            if now >= nextNudge { nudge(); nextNudge = now &+ Self.quiesceNudgeIntervalNanoseconds }
            sched_yield()
        }
        let value = body()
        rt.pointee.quiesceRequested.store(false, ordering: .sequentiallyConsistent)
        _ = cj_fetch_add_u32(&rt.pointee.quiesceWord, 1)
        if rt.pointee.quiesced.load(ordering: .sequentiallyConsistent) > 0 {
            _ = cj_futex_wake(&rt.pointee.quiesceWord, Int32.max)
        }
        return (value, all)
    }

    /// A safe point outside the scheduler (e.g. the start of a system call, where the
    /// caller holds no lock): waits while a stopper has the world stopped. One load when
    /// nobody does.
    @inline(__always)
    public static func quiescePoint() {
        guard let k = KT.current else { return }
        let rt = k.pointee.runtime
        if rt.pointee.quiesceRequested.load(ordering: .relaxed) { Scheduler.waitWhileQuiesced(rt) }
    }
}

extension Scheduler {
    /// Waits (counted as stopped) until the stopper lets the world go.
    static func waitWhileQuiesced(_ rt: RT) {
        rt.pointee.quiesced.add(1, ordering: .sequentiallyConsistent)
        while rt.pointee.quiesceRequested.load(ordering: .sequentiallyConsistent) {
            let word = cj_load_acquire_u32(&rt.pointee.quiesceWord)
            if !rt.pointee.quiesceRequested.load(ordering: .sequentiallyConsistent) { break }
            _ = cj_futex_wait(&rt.pointee.quiesceWord, word, Runtime.quiesceWaitNanoseconds)
        }
        rt.pointee.quiesced.subtract(1, ordering: .sequentiallyConsistent)
    }
}
