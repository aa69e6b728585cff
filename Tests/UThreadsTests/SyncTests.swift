// SyncTests.swift: Mutex, Condition, WaitGroup, Semaphore and RWLock under contention
// across kthreads.
import Synchronization
import Testing
@testable import UThreads

@Suite("Synchronisation", .timeLimit(.minutes(1)))
struct SyncTests {
    @Test("thousands of uthreads on one Mutex lose no increments")
    func mutexContention() {
        let count = inRuntime { () -> Int in
            let m = UThreads.Mutex()
            let counter = Shared(0)
            var hs: [JoinHandle<Void>] = []
            for _ in 0..<2_000 {
                hs.append(UThread.spawn {
                    for i in 0..<50 {
                        m.lock()
                        let v = counter.value
                        if i % 7 == 0 { UThread.yield() }  // hold the lock across a switch
                        counter.value = v + 1
                        m.unlock()
                    }
                })
            }
            for h in hs { h.join() }
            return counter.value
        }
        #expect(count == 100_000)
    }

    @Test("producer/consumer on a Condition delivers every item once, in order")
    func producerConsumer() {
        let received = inRuntime { () -> [Int] in
            let m = UThreads.Mutex(), notEmpty = Condition(), notFull = Condition()
            let queue = Shared<[Int]>([]), out = Shared<[Int]>([])
            let consumer = UThread.spawn {
                for _ in 0..<5_000 {
                    m.lock()
                    while queue.value.isEmpty { notEmpty.wait(m) }
                    out.value.append(queue.value.removeFirst())
                    notFull.signal()
                    m.unlock()
                }
            }
            let producer = UThread.spawn {
                for i in 0..<5_000 {
                    m.lock()
                    while queue.value.count >= 8 { notFull.wait(m) }
                    queue.value.append(i)
                    notEmpty.signal()
                    m.unlock()
                }
            }
            producer.join(); consumer.join()
            return out.value
        }
        #expect(received == Array(0..<5_000))
    }

    @Test("a timed Condition wait times out, and a signalled one does not")
    func conditionTimeout() {
        let (timedOut, signalled) = inRuntime { () -> (Bool, Bool) in
            let m = UThreads.Mutex(), c = Condition()
            m.lock()
            let start = MonotonicInstant.now
            let first = c.wait(m, timeout: .milliseconds(20))
            let waited = start.duration(to: .now)
            m.unlock()
            let waker = UThread.spawn {
                UThread.sleep(for: .milliseconds(5))
                m.withLock { c.signal() }
            }
            m.lock()
            let second = c.wait(m, timeout: .seconds(10))
            m.unlock()
            waker.join()
            return (!first && waited >= .milliseconds(20), second)
        }
        #expect(timedOut)
        #expect(signalled)
    }

    @Test("broadcast wakes every waiter")
    func broadcast() {
        let woke = inRuntime { () -> Int in
            let m = UThreads.Mutex(), c = Condition()
            let go = Shared(false), woke = Atomic<Int>(0)
            let ready = WaitGroup(count: 50)
            var hs: [JoinHandle<Void>] = []
            for _ in 0..<50 {
                hs.append(UThread.spawn {
                    m.lock()
                    ready.done()
                    while !go.value { c.wait(m) }
                    m.unlock()
                    woke.add(1, ordering: .relaxed)
                })
            }
            ready.wait()
            m.withLock { go.value = true; c.broadcast() }
            for h in hs { h.join() }
            return woke.load(ordering: .relaxed)
        }
        #expect(woke == 50)
    }

    @Test("WaitGroup.wait returns after every done, and times out before")
    func waitGroup() {
        let (finished, timedOut) = inRuntime { () -> (Int, Bool) in
            let wg = WaitGroup()
            let finished = Atomic<Int>(0)
            let gate = Semaphore(value: 0)
            for _ in 0..<100 {
                wg.add()
                UThread.spawn {
                    gate.wait()
                    finished.add(1, ordering: .relaxed)
                    wg.done()
                }
            }
            let early = wg.wait(timeout: .milliseconds(10))
            for _ in 0..<100 { gate.signal() }
            wg.wait()
            return (finished.load(ordering: .relaxed), !early)
        }
        #expect(finished == 100)
        #expect(timedOut)
    }

    @Test("a Semaphore never admits more than its value")
    func semaphoreLimit() {
        let maxSeen = inRuntime { () -> Int in
            let sem = Semaphore(value: 3)
            let inside = Atomic<Int>(0), maxSeen = Atomic<Int>(0)
            var hs: [JoinHandle<Void>] = []
            for _ in 0..<200 {
                hs.append(UThread.spawn {
                    sem.wait()
                    let now = inside.add(1, ordering: .acquiringAndReleasing).newValue
                    var m = maxSeen.load(ordering: .relaxed)
                    while now > m {
                        let (ok, cur) = maxSeen.compareExchange(expected: m, desired: now, ordering: .relaxed)
                        if ok { break }
                        m = cur
                    }
                    UThread.yield()
                    inside.subtract(1, ordering: .acquiringAndReleasing)
                    sem.signal()
                })
            }
            for h in hs { h.join() }
            #expect(sem.available == 3)
            return maxSeen.load(ordering: .relaxed)
        }
        #expect(maxSeen <= 3 && maxSeen >= 1)
    }

    @Test("Semaphore.wait(timeout:) gives up")
    func semaphoreTimeout() {
        let ok = inRuntime { () -> Bool in
            let sem = Semaphore(value: 0)
            return !sem.wait(timeout: .milliseconds(5)) && !sem.tryWait()
        }
        #expect(ok)
    }

    @Test("RWLock: readers share, writers exclude everyone")
    func rwlock() {
        let (violations, maxReaders, writes) = inRuntime { () -> (Int, Int, Int) in
            let rw = RWLock()
            // Sharing, checked deterministically: two readers are inside at once (each
            // waits, up to 2 s, for the other while holding the lock).
            let inside = Atomic<Int>(0), together = Atomic<Int>(0)
            let pair = (0..<2).map { _ in
                UThread.spawn {
                    rw.withReadLock {
                        inside.add(1, ordering: .acquiringAndReleasing)
                        let deadline = MonotonicInstant.now.advanced(by: .seconds(2))
                        while inside.load(ordering: .acquiring) < 2 && MonotonicInstant.now < deadline { UThread.yield() }
                        if inside.load(ordering: .acquiring) == 2 { together.add(1, ordering: .relaxed) }
                    }
                }
            }
            for h in pair { h.join() }
            let readers = Atomic<Int>(0), writers = Atomic<Int>(0)
            let violations = Atomic<Int>(0), maxReaders = Atomic<Int>(0), writes = Atomic<Int>(0)
            var hs: [JoinHandle<Void>] = []
            for i in 0..<300 {
                hs.append(UThread.spawn {
                    for _ in 0..<20 {
                        if i % 10 == 0 {
                            rw.withWriteLock {
                                if writers.add(1, ordering: .acquiringAndReleasing).newValue != 1 || readers.load(ordering: .acquiring) != 0 {
                                    violations.add(1, ordering: .relaxed)
                                }
                                UThread.yield()
                                writes.add(1, ordering: .relaxed)
                                writers.subtract(1, ordering: .acquiringAndReleasing)
                            }
                        } else {
                            rw.withReadLock {
                                let r = readers.add(1, ordering: .acquiringAndReleasing).newValue
                                if writers.load(ordering: .acquiring) != 0 { violations.add(1, ordering: .relaxed) }
                                if r > maxReaders.load(ordering: .relaxed) { maxReaders.store(r, ordering: .relaxed) }
                                UThread.yield()
                                readers.subtract(1, ordering: .acquiringAndReleasing)
                            }
                        }
                    }
                })
            }
            for h in hs { h.join() }
            _ = maxReaders.load(ordering: .relaxed)  // how many overlapped under load: timing, not checked
            return (violations.load(ordering: .relaxed), together.load(ordering: .relaxed), writes.load(ordering: .relaxed))
        }
        #expect(violations == 0)
        #expect(maxReaders == 2, "two readers were not inside the lock together")
        #expect(writes == 600)
    }
}
