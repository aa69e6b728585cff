// QuiesceTests.swift: stopping the world (Runtime.withWorldStopped, what a fork does):
// no uthread runs elsewhere while the body runs, kthreads asleep in their idle loop
// count as stopped without being woken, and everything runs again afterwards.
import CUThreads
import Synchronization
import Testing
@testable import UThreads

@Suite("Quiesce", .timeLimit(.minutes(1)))
struct QuiesceTests {
    @Test("while the world is stopped no other uthread runs; afterwards they all do")
    func nothingRunsDuringTheBody() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 3))
        let counter = Atomic<Int>(0), done = Atomic<Bool>(false)
        let busy = rt.spawn(on: 1) {
            while !done.load(ordering: .acquiring) {
                counter.add(1, ordering: .relaxed)
                // A safe point, as the start of a system call is (a yield with nothing
                // else runnable returns at once, without passing the scheduler).
                Runtime.quiescePoint()
                UThread.yield()
            }
        }
        let (unchanged, all, lateRan) = rt.spawn(on: 0) { () -> (Bool, Bool, Int) in
            while counter.load(ordering: .relaxed) == 0 { UThread.yield() }
            let (unchanged, all) = Runtime.current!.withWorldStopped(nudge: {}) { () -> Bool in
                // Long enough for a running uthread to have counted many times.
                let before = counter.load(ordering: .relaxed)
                let until = cj_monotonic_ns() + 20_000_000
                while cj_monotonic_ns() < until { if counter.load(ordering: .relaxed) != before { return false } }
                return true
            }
            // The busy uthread runs again.
            let after = counter.load(ordering: .relaxed)
            while counter.load(ordering: .relaxed) == after { UThread.yield() }
            done.store(true, ordering: .releasing)
            // Kthread 2 was idle (spinning or asleep) during the stop: it runs work now.
            let late = Runtime.current!.spawn(on: 2) { 7 }.join()
            return (unchanged, all, late)
        }.join()
        busy.join()
        rt.shutdown()
        #expect(unchanged)
        #expect(all)
        #expect(lateRan == 7)
    }

    @Test("a kthread asleep in its idle loop counts as stopped and is not woken (no nudge needed)")
    func sleepersAreNotWoken() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        let (all, nudges, sleptThrough, ranAfter) = rt.spawn(on: 0) { () -> (Bool, Int, Bool, Int) in
            // Until the other kthread sleeps in the kernel (it spins briefly first).
            while rt.core.pointee.quiesceAsleep.load(ordering: .sequentiallyConsistent) == 0 { UThread.yield() }
            // (A yield may have moved this uthread: the other kthread is the one not running it.)
            let other = 1 - UThread.kthreadIndex!
            let sleepsBefore = rt.statistics()[other].sleeps
            var nudges = 0
            let (_, all) = rt.withWorldStopped(nudge: { nudges += 1 }) { () }
            let sleptThrough = rt.statistics()[other].sleeps == sleepsBefore
                && rt.core.pointee.quiesceAsleep.load(ordering: .sequentiallyConsistent) == 1
            let after = rt.spawn(on: other) { 5 }.join()
            return (all, nudges, sleptThrough, after)
        }.join()
        rt.shutdown()
        #expect(all)
        #expect(nudges == 0)
        #expect(sleptThrough)
        #expect(ranAfter == 5)
    }
}
