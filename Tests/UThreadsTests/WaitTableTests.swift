// WaitTableTests.swift: the address-keyed wait table (the libOS futex): value checks,
// timeouts, interruption, wake counts, bitsets and requeue.
import Synchronization
import Testing
@testable import UThreads

@Suite("WaitTable", .timeLimit(.minutes(1)))
struct WaitTableTests {
    @Test("a value mismatch returns at once")
    func mismatch() {
        let r = inRuntime { () -> WaitResult in
            let table = WaitTable(), word = Word(1)
            return table.wait(on: word.pointer, expected: 0)
        }
        #expect(r == .valueMismatch)
    }

    @Test("a wait times out and leaves the table")
    func timeout() {
        let (r, left, waited) = inRuntime { () -> (WaitResult, Int, Duration) in
            let table = WaitTable(), word = Word(0)
            let start = MonotonicInstant.now
            let r = table.wait(on: word.pointer, expected: 0, deadline: start.advanced(by: .milliseconds(10)))
            return (r, table.waiterCount(word.pointer), start.duration(to: .now))
        }
        #expect(r == .timedOut)
        #expect(left == 0)
        #expect(waited >= .milliseconds(10))
    }

    @Test("interrupt() ends a wait with .interrupted and takes the waiter out; a later wait is not affected")
    func interrupted() {
        let (r, left, again) = inRuntime { () -> (WaitResult, Int, WaitResult) in
            let table = WaitTable(), word = Word(0)
            let waiter = UThread.spawn { table.wait(on: word.pointer, expected: 0) }
            while table.waiterCount(word.pointer) == 0 { UThread.yield() }
            waiter.uthread.interrupt()
            let r = waiter.join()
            let left = table.waiterCount(word.pointer)
            let again = UThread.spawn {
                table.wait(on: word.pointer, expected: 0, deadline: MonotonicInstant.now.advanced(by: .milliseconds(5)))
            }.join()
            return (r, left, again)
        }
        #expect(r == .interrupted)
        #expect(left == 0)
        #expect(again == .timedOut)
    }

    @Test("wake wakes at most count waiters on that address only")
    func wakeCount() {
        let (woken, rest, other) = inRuntime { () -> (Int, Int, Int) in
            let table = WaitTable(), word = Word(0), otherWord = Word(0)
            var hs: [JoinHandle<WaitResult>] = []
            for _ in 0..<5 { hs.append(UThread.spawn { table.wait(on: word.pointer, expected: 0) }) }
            let bystander = UThread.spawn { table.wait(on: otherWord.pointer, expected: 0) }
            while table.waiterCount(word.pointer) < 5 || table.waiterCount(otherWord.pointer) < 1 { UThread.yield() }
            let woken = table.wake(word.pointer, count: 3)
            while hs.filter({ $0.isFinished }).count < 3 { UThread.yield() }
            let rest = table.waiterCount(word.pointer)
            let other = table.waiterCount(otherWord.pointer)
            table.wake(word.pointer, count: .max)
            table.wake(otherWord.pointer, count: .max)
            for h in hs { #expect(h.join() == .woken) }
            #expect(bystander.join() == .woken)
            return (woken, rest, other)
        }
        #expect(woken == 3)
        #expect(rest == 2)
        #expect(other == 1)
    }

    @Test("wake with a bitset passes over waiters whose bitset does not intersect")
    func bitsets() {
        let (first, left) = inRuntime { () -> (Int, Int) in
            let table = WaitTable(), word = Word(0)
            let a = UThread.spawn { table.wait(on: word.pointer, expected: 0, bitset: 0b01) }
            let b = UThread.spawn { table.wait(on: word.pointer, expected: 0, bitset: 0b10) }
            while table.waiterCount(word.pointer) < 2 { UThread.yield() }
            let first = table.wake(word.pointer, count: 10, bitset: 0b10)
            while !b.isFinished { UThread.yield() }
            let left = table.waiterCount(word.pointer)
            table.wake(word.pointer, count: 10)
            _ = a.join(); _ = b.join()
            return (first, left)
        }
        #expect(first == 1)
        #expect(left == 1)
    }

    @Test("requeue wakes some and moves the rest to another word; the compare variant checks the value")
    func requeue() {
        let (moved, onSource, onTarget, mismatch) = inRuntime { () -> (Int?, Int, Int, Int?) in
            let table = WaitTable(), from = Word(7), to = Word(0)
            var hs: [JoinHandle<WaitResult>] = []
            for _ in 0..<4 { hs.append(UThread.spawn { table.wait(on: from.pointer, expected: 7) }) }
            while table.waiterCount(from.pointer) < 4 { UThread.yield() }
            let mismatch = table.requeue(from: from.pointer, to: to.pointer, wakeCount: 1, requeueCount: 10, expected: 8)
            let moved = table.requeue(from: from.pointer, to: to.pointer, wakeCount: 1, requeueCount: 10, expected: 7)
            let onSource = table.waiterCount(from.pointer), onTarget = table.waiterCount(to.pointer)
            table.wake(to.pointer, count: .max)
            for h in hs { #expect(h.join() == .woken) }
            return (moved, onSource, onTarget, mismatch)
        }
        #expect(mismatch == nil)
        #expect(moved == 4)
        #expect(onSource == 0)
        #expect(onTarget == 3)
    }

    @Test("a requeued waiter that times out leaves the target bucket cleanly")
    func requeuedTimeout() {
        let (r, left) = inRuntime { () -> (WaitResult, Int) in
            let table = WaitTable(), from = Word(0), to = Word(0)
            let h = UThread.spawn {
                table.wait(on: from.pointer, expected: 0, deadline: MonotonicInstant.now.advanced(by: .milliseconds(20)))
            }
            while table.waiterCount(from.pointer) < 1 { UThread.yield() }
            _ = table.requeue(from: from.pointer, to: to.pointer, wakeCount: 0, requeueCount: 1)
            let r = h.join()
            return (r, table.waiterCount(to.pointer))
        }
        #expect(r == .timedOut)
        #expect(left == 0)
    }

    @Test("futex-style mutex built on the table stays correct under contention across kthreads")
    func futexMutex() {
        let total = inRuntime { () -> Int in
            let table = WaitTable(), word = Word(0)
            let counter = Shared(0)
            let atomic = UnsafeMutableRawPointer(word.pointer).assumingMemoryBound(to: Atomic<UInt32>.self)
            nonisolated(unsafe) let a = atomic
            // Drepper's futex mutex: 0 free, 1 locked, 2 locked with waiters.
            @Sendable func lock() {
                var c = a.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).original
                if c == 0 { return }
                if c != 2 { c = a.pointee.exchange(2, ordering: .acquiring) }
                while c != 0 {
                    _ = table.wait(on: word.pointer, expected: 2)
                    c = a.pointee.exchange(2, ordering: .acquiring)
                }
            }
            @Sendable func unlock() {
                if a.pointee.subtract(1, ordering: .releasing).oldValue != 1 {
                    a.pointee.store(0, ordering: .releasing)
                    table.wake(word.pointer, count: 1)
                }
            }
            var hs: [JoinHandle<Void>] = []
            for _ in 0..<200 {
                hs.append(UThread.spawn {
                    for _ in 0..<100 { lock(); counter.value += 1; if counter.value % 13 == 0 { UThread.yield() }; unlock() }
                })
            }
            for h in hs { h.join() }
            return counter.value
        }
        #expect(total == 20_000)
    }
}
