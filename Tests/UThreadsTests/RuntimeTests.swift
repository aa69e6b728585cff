// RuntimeTests.swift: spawning, joining, yielding, parking, register state across
// switches, the %gs area and work stealing.
import CUThreads
import Foundation
import Synchronization
import Testing
@testable import UThreads

@Suite("Runtime", .timeLimit(.minutes(1)))
struct RuntimeTests {
    @Test("spawn returns the body's result to a joining OS thread and uthread")
    func spawnJoin() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        #expect(rt.spawn { 6 * 7 }.join() == 42)
        let nested = rt.spawn { () -> String in
            let inner = UThread.spawn { "inner" }
            return inner.join() + "+outer"
        }.join()
        #expect(nested == "inner+outer")
        rt.shutdown()
        #expect(rt.liveUThreads == 0)
    }

    @Test("ten thousand uthreads spawn, run and join; stacks are reused")
    func manyUThreads() throws {
        let total = inRuntime { () -> Int in
            var handles: [JoinHandle<Int>] = []
            handles.reserveCapacity(10_000)
            for i in 0..<10_000 { handles.append(UThread.spawn { i }) }
            return handles.reduce(0) { $0 + $1.join() }
        }
        #expect(total == (0..<10_000).reduce(0, +))
    }

    @Test("yield interleaves uthreads on one kthread in FIFO order")
    func yieldInterleaves() {
        let log = inRuntime(kthreads: 1) { () -> [String] in
            let out = Shared<[String]>([])
            let a = UThread.spawn { for i in 0..<3 { out.value.append("a\(i)"); UThread.yield() } }
            let b = UThread.spawn { for i in 0..<3 { out.value.append("b\(i)"); UThread.yield() } }
            a.join(); b.join()
            return out.value
        }
        #expect(log == ["a0", "b0", "a1", "b1", "a2", "b2"])
    }

    @Test("park/unpark across kthreads, with the permit arriving before or after the park",
          arguments: [WakePlacement.waker, .home])
    func parkUnpark(placement: WakePlacement) {
        // A strict handshake: a lost wake-up on either side hangs (caught by the time limit).
        let rounds = inRuntime(placement: placement) { () -> Int in
            let counter = Atomic<Int>(0), ack = Atomic<Int>(0)
            let main = UThread.current
            let parker = UThread.spawn {
                for i in 1...2_000 {
                    while counter.load(ordering: .acquiring) < i { UThread.park() }
                    ack.store(i, ordering: .releasing)
                    main.unpark()
                }
            }
            let other = parker.uthread
            for i in 1...2_000 {
                counter.store(i, ordering: .releasing)
                other.unpark()
                if i % 3 == 0 { UThread.yield() }
                while ack.load(ordering: .acquiring) < i { UThread.park() }
            }
            parker.join()
            return ack.load(ordering: .relaxed)
        }
        #expect(rounds == 2_000)
    }

    @Test("MXCSR and the x87 control word are per uthread")
    func floatingPointControlIsSaved() {
        let ok = inRuntime(kthreads: 1) { () -> Bool in
            let seen = Shared<UInt32>(0)
            let a = UThread.spawn { () -> UInt32 in
                cj_set_mxcsr(0x1F80 | 0x6000)  // exceptions masked, rounding: toward zero
                UThread.yield()  // let b run with its own state
                return readMXCSR()
            }
            let b = UThread.spawn { seen.value = readMXCSR() }
            let aCSR = a.join(); b.join()
            return aCSR & 0x6000 == 0x6000 && seen.value & 0x6000 == 0
        }
        #expect(ok)
    }

    @Test("the %gs base points at the running kthread's area")
    func gsArea() {
        let ok = inRuntime { () -> Bool in
            guard let area = cj_area_or_null() else { return false }
            return cj_read_gs_base() == UInt(bitPattern: area) && cj_area_gs() == area && area.pointee.current != nil
        }
        #expect(ok)
        #expect(cj_area_or_null() == nil)
    }

    @Test("an idle kthread steals half of a busy kthread's run queue")
    func stealing() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        let ranOn = Mutex<[Int: Int]>([:])
        // One parent on kthread 0 spawns 200 CPU-bound children onto its own run queue.
        rt.spawn(on: 0) {
            var hs: [JoinHandle<Void>] = []
            for _ in 0..<200 {
                hs.append(UThread.spawn {
                    let start = MonotonicInstant.now
                    while start.duration(to: .now) < .microseconds(200) {}
                    let k = UThread.kthreadIndex!
                    ranOn.withLock { $0[k, default: 0] += 1 }
                })
            }
            for h in hs { h.join() }
        }.join()
        let stolen = rt.statistics().reduce(0) { $0 + $1.stolen }
        rt.shutdown()
        let counts = ranOn.withLock { $0 }
        #expect(stolen > 0)
        #expect((counts[1] ?? 0) > 0, "kthread 1 ran none of the children: \(counts)")
        #expect(counts.values.reduce(0, +) == 200)
    }

    @Test("a poll hook with an fd wakes a sleeping kthread and unparks a uthread")
    func pollHook() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1, spinBeforeSleep: .zero))
        let efd = eventfd(0, Int32(EFD_NONBLOCK))
        defer { close(efd) }
        let waiter = Shared<UThreadRef?>(nil)
        let arrived = Atomic<Int>(0)
        try rt.addPollHook(PollHook(name: "test", fd: efd) {
            var v: UInt64 = 0
            guard read(efd, &v, 8) == 8 else { return 0 }
            arrived.add(Int(v), ordering: .releasing)
            waiter.value?.unpark()
            return 1
        }, kthread: 0)
        let h = rt.spawn { () -> Int in
            waiter.value = UThread.current
            while arrived.load(ordering: .acquiring) == 0 { UThread.park() }
            return arrived.load(ordering: .acquiring)
        }
        usleep(50_000)  // the kthread is asleep in epoll by now
        var one: UInt64 = 5
        _ = write(efd, &one, 8)
        #expect(h.join() == 5)
        rt.shutdown()
    }

    @Test("a parked runtime uses almost no CPU")
    func idleUsesNoCPU() throws {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        // Some work first, then nothing but a uthread parked on a long timer.
        for _ in 0..<100 { rt.spawn { UThread.yield() }.join() }
        let sleeper = rt.spawn { UThread.sleep(for: .seconds(30)) }
        usleep(100_000)
        let tids = rt.statistics().map(\.tid)
        let before = tids.map(cpuTicks)
        let wallStart = MonotonicInstant.now
        usleep(1_000_000)
        let wall = Double(wallStart.duration(to: .now).nanosecondsSaturated) / 1e9
        let used = zip(tids.map(cpuTicks), before).map { $0 - $1 }.reduce(0, +)
        let fractionOfCore = Double(used) / Double(sysconf(Int32(_SC_CLK_TCK))) / wall
        sleeper.uthread.interrupt()
        #expect(sleeper.join() == .interrupted)
        rt.shutdown()
        #expect(fractionOfCore < 0.05, "idle kthreads used \(fractionOfCore * 100)% of a core")
    }
}

/// utime + stime of one thread of this process, in clock ticks.
func cpuTicks(_ tid: Int32) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

func readMXCSR() -> UInt32 { cj_get_mxcsr() }
