// TimerTests.swift: sleep ordering on the timer heap, and cancellation.
import Synchronization
import Testing
@testable import UThreads

@Suite("Timers", .timeLimit(.minutes(1)))
struct TimerTests {
    @Test("sleepers wake in deadline order, not spawn order")
    func ordering() {
        let order = inRuntime(kthreads: 1) { () -> [Int] in
            let woke = Shared<[Int]>([])
            // Deadlines 3 ms apart, spawned in a scrambled order; the first is far enough
            // ahead that every sleeper has armed its timer even on a loaded machine.
            let slots = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]
            let base = MonotonicInstant.now.advanced(by: .milliseconds(300))
            var hs: [JoinHandle<Void>] = []
            for s in slots {
                hs.append(UThread.spawn {
                    UThread.sleep(until: base.advanced(by: .milliseconds(3 * s)))
                    woke.value.append(s)
                })
            }
            for h in hs { h.join() }
            return woke.value
        }
        #expect(order == Array(0..<10))
    }

    @Test("a sleep lasts at least its duration")
    func duration() {
        let slept = inRuntime { () -> Duration in
            let start = MonotonicInstant.now
            #expect(UThread.sleep(for: .milliseconds(15)) == .completed)
            return start.duration(to: .now)
        }
        #expect(slept >= .milliseconds(15))
        #expect(slept < .seconds(2))
    }

    @Test("interrupt cancels a sleep early and removes its timer")
    func cancellation() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1))
        let started = Atomic<Bool>(false)
        let sleeper = rt.spawn { () -> (SleepResult, Duration) in
            let start = MonotonicInstant.now
            started.store(true, ordering: .releasing)
            let r = UThread.sleep(for: .seconds(60))
            return (r, start.duration(to: .now))
        }
        while !started.load(ordering: .acquiring) {}
        // Wait until its timer is armed.
        while rt.armedTimers(kthread: 0) == 0 {}
        sleeper.uthread.interrupt()
        let (result, took) = sleeper.join()
        #expect(result == .interrupted)
        #expect(took < .seconds(5))
        #expect(rt.armedTimers(kthread: 0) == 0)
        rt.shutdown()
    }

    @Test("park(until:) reports the timeout; unpark before the deadline does not")
    func timedPark() {
        let (timedOut, early) = inRuntime { () -> (Bool, Bool) in
            let a = UThread.park(until: MonotonicInstant.now.advanced(by: .milliseconds(3)))
            let me = UThread.current
            let waker = UThread.spawn { me.unpark() }
            var b = false
            // The unpark may land before the park: a permit, so park returns at once.
            b = UThread.park(until: MonotonicInstant.now.advanced(by: .seconds(30)))
            waker.join()
            return (a, !b)
        }
        #expect(timedOut)
        #expect(early)
    }
}
