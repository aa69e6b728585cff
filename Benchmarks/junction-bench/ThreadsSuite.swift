// ThreadsSuite.swift: `junction-bench threads`: UThreads beside pthreads and Swift
// concurrency: yield, spawn+join, uncontended mutex, condvar ping-pong.
import ArgumentParser
import CJunction
import Dispatch
import Foundation
import Synchronization
import UThreads

struct ThreadsSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "threads",
                                                    abstract: "User-level threads versus pthreads and Swift concurrency.")
    @OptionGroup var options: SuiteOptions

    func run() throws {
        let o = options
        var results: [BenchResult] = []

        if o.wants("yield") {
        let yieldNs = try uthreadYield(o.iterations(2_000_000))
        results.append(BenchResult(name: "yield (same kthread)", unit: "ns", spread: yieldNs,
                                   peers: ["pthreads: sched_yield, 2 threads on 1 core": pthreadSchedYield(o.iterations(200_000))]))

        }
        if o.wants("spawn") {
        let spawnNs = try uthreadSpawnJoin(o.iterations(500_000))
        results.append(BenchResult(name: "spawn+join", unit: "ns", spread: spawnNs,
                                   peers: ["pthreads: create+join": pthreadCreateJoin(o.iterations(5_000)),
                                           "swift-concurrency: Task spawn+await": taskSpawnAwait(o.iterations(200_000))]))

        }
        if o.wants("mutex") {
        let mutexNs = try uthreadMutex(o.iterations(5_000_000))
        results.append(BenchResult(name: "mutex lock+unlock (uncontended)", unit: "ns", spread: mutexNs,
                                   peers: ["pthreads: pthread_mutex lock+unlock": pthreadMutex(o.iterations(5_000_000))]))

        }
        if o.wants("ping-pong") {
        let pthreadPingPong = pthreadCondvarPingPong(o.iterations(50_000))
        let continuationPingPong = continuationPingPongNs(o.iterations(200_000))
        let oneK = try uthreadCondvarPingPong(o.iterations(1_000_000), kthreads: 1)
        results.append(BenchResult(name: "condvar ping-pong round trip (one kthread)", unit: "ns", spread: oneK,
                                   peers: ["pthreads: condvar ping-pong": pthreadPingPong,
                                           "swift-concurrency: continuation ping-pong": continuationPingPong]))
        let crossK = try uthreadCondvarPingPong(o.iterations(200_000), kthreads: 2)
        results.append(BenchResult(name: "condvar ping-pong round trip (across kthreads)", unit: "ns", spread: crossK,
                                   peers: ["pthreads: condvar ping-pong": pthreadPingPong,
                                           "swift-concurrency: continuation ping-pong": continuationPingPong]))
        }
        o.emit(SuiteReport(suite: "threads", results: results))
    }

    // MARK: UThreads

    func uthreadYield(_ n: Int) throws -> Spread {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1))
        defer { rt.shutdown() }
        return spreadNanos(iterations: n) { n in
            rt.spawn { () -> Double in
                let other = UThread.spawn { for _ in 0..<n { UThread.yield() } }
                let start = nowNanos()
                for _ in 0..<n { UThread.yield() }
                other.join()
                return (nowNanos() - start) / 2  // two yields per round
            }.join()
        }
    }

    func uthreadSpawnJoin(_ n: Int) throws -> Spread {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1))
        defer { rt.shutdown() }
        return spreadNanos(iterations: n) { n in
            rt.spawn { () -> Double in
                let start = nowNanos()
                for _ in 0..<n { UThread.spawn {}.join() }
                return nowNanos() - start
            }.join()
        }
    }

    func uthreadMutex(_ n: Int) throws -> Spread {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1))
        defer { rt.shutdown() }
        let m = UThreads.Mutex()
        return spreadNanos(iterations: n) { n in
            rt.spawn { () -> Double in
                let start = nowNanos()
                for _ in 0..<n { m.lock(); m.unlock() }
                return nowNanos() - start
            }.join()
        }
    }

    /// Two uthreads hand a turn back and forth through a Mutex and two Conditions.
    func uthreadCondvarPingPong(_ n: Int, kthreads: Int) throws -> Spread {
        let rt = try Runtime(RuntimeConfiguration(kthreads: kthreads, pinKThreads: kthreads > 1,
                                                  wakePlacement: kthreads > 1 ? .home : .waker))
        defer {
            // Why a cross-kthread round trip is slow: kthreads that slept in the kernel
            // (and were woken through their doorbell) instead of spinning.
            if getenv("JUNCTION_BENCH_VERBOSE") != nil {
                let s = rt.statistics()
                FileHandle.standardError.write("ping-pong on \(kthreads) kthread(s): \(n) rounds x 5, sleeps \(s.map(\.sleeps)), switches \(s.map(\.switches)), polls \(s.map(\.polls))\n".data(using: .utf8)!)
            }
            rt.shutdown()
        }
        return spreadNanos(iterations: n) { n in
            let m = UThreads.Mutex(), ping = Condition(), pong = Condition()
            let turn = Shared(0)
            let ponger = rt.spawn(on: kthreads - 1) {
                for _ in 0..<n {
                    m.lock()
                    while turn.value != 1 { ping.wait(m) }
                    turn.value = 0
                    pong.signal()
                    m.unlock()
                }
            }
            let elapsed = rt.spawn(on: 0) { () -> Double in
                let start = nowNanos()
                for _ in 0..<n {
                    m.lock()
                    turn.value = 1
                    ping.signal()
                    while turn.value != 0 { pong.wait(m) }
                    m.unlock()
                }
                return nowNanos() - start
            }.join()
            ponger.join()
            return elapsed
        }
    }

    // MARK: pthreads

    func pthreadSchedYield(_ n: Int) -> Spread {
        spreadNanos(repetitions: 3, iterations: n) { n in
            let body: @Sendable () -> Void = {
                _ = cj_pin_to_nth_allowed_cpu(0)
                for _ in 0..<n { sched_yield() }
            }
            let start = nowNanos()
            let a = startPThread(body), b = startPThread(body)
            pthread_join(a, nil); pthread_join(b, nil)
            return (nowNanos() - start) / 2
        }
    }

    func pthreadCreateJoin(_ n: Int) -> Spread {
        spreadNanos(iterations: n) { n in
            let start = nowNanos()
            for _ in 0..<n { pthread_join(startPThread {}, nil) }
            return nowNanos() - start
        }
    }

    func pthreadMutex(_ n: Int) -> Spread {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        defer { pthread_mutex_destroy(m); m.deallocate() }
        return spreadNanos(iterations: n) { n in
            let start = nowNanos()
            for _ in 0..<n { pthread_mutex_lock(m); pthread_mutex_unlock(m) }
            return nowNanos() - start
        }
    }

    func pthreadCondvarPingPong(_ n: Int) -> Spread {
        spreadNanos(iterations: n) { n in
            let s = PThreadPingPong()
            let ponger = startPThread {
                for _ in 0..<n {
                    pthread_mutex_lock(s.m)
                    while s.turn.value != 1 { pthread_cond_wait(s.ping, s.m) }
                    s.turn.value = 0
                    pthread_cond_signal(s.pong)
                    pthread_mutex_unlock(s.m)
                }
            }
            let start = nowNanos()
            for _ in 0..<n {
                pthread_mutex_lock(s.m)
                s.turn.value = 1
                pthread_cond_signal(s.ping)
                while s.turn.value != 0 { pthread_cond_wait(s.pong, s.m) }
                pthread_mutex_unlock(s.m)
            }
            let elapsed = nowNanos() - start
            pthread_join(ponger, nil)
            return elapsed
        }
    }

    // MARK: Swift concurrency

    func taskSpawnAwait(_ n: Int) -> Spread {
        spreadNanos(iterations: n) { n in
            blockingAsync {
                let start = nowNanos()
                for _ in 0..<n { await Task {}.value }
                return nowNanos() - start
            }
        }
    }

    func continuationPingPongNs(_ n: Int) -> Spread {
        spreadNanos(iterations: n) { n in
            blockingAsync {
                let a = Baton(), b = Baton()
                let ponger = Task {
                    for _ in 0..<n {
                        await b.wait()
                        a.signal()
                    }
                }
                let start = nowNanos()
                for _ in 0..<n {
                    b.signal()
                    await a.wait()
                }
                let elapsed = nowNanos() - start
                await ponger.value
                return elapsed
            }
        }
    }
}

// MARK: - helpers

final class Shared<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

final class PThreadPingPong: @unchecked Sendable {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let ping = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let pong = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let turn = Shared(0)
    init() {
        pthread_mutex_init(m, nil)
        pthread_cond_init(ping, nil)
        pthread_cond_init(pong, nil)
    }
    deinit {
        pthread_mutex_destroy(m); pthread_cond_destroy(ping); pthread_cond_destroy(pong)
        m.deallocate(); ping.deallocate(); pong.deallocate()
    }
}

private final class PThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

func startPThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    var t = pthread_t()
    let arg = Unmanaged.passRetained(PThreadBody(body)).toOpaque()
    let rc = pthread_create(&t, nil, { arg in
        Unmanaged<PThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, arg)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return t
}

/// Runs an async body from synchronous code and waits for its result.
func blockingAsync<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let out = Shared<T?>(nil)
    Task {
        out.value = await body()
        done.signal()
    }
    done.wait()
    return out.value!
}

/// A one-slot handoff between two tasks: `signal` resumes the waiter or leaves a permit.
final class Baton: Sendable {
    private let state = Synchronization.Mutex<(permit: Bool, waiter: UnsafeContinuation<Void, Never>?)>((false, nil))

    func wait() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.permit { s.permit = false; return true }
                s.waiter = c
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    func signal() {
        let c = state.withLock { s -> UnsafeContinuation<Void, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.permit = true
            return nil
        }
        c?.resume()
    }
}
