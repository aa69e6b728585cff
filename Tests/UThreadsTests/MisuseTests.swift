// MisuseTests.swift: API misuse stops the process with a message naming the mistake
// (exit tests: each body runs in a child process).
import Foundation
import Testing
@testable import UThreads

@Suite("Misuse", .timeLimit(.minutes(2)))
struct MisuseTests {
    @Test("joining a uthread twice")
    func joinTwice() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 1))
            let h = rt.spawn { 1 }
            _ = h.join()
            _ = h.join()
        }
        #expect(stderrText(result).contains("JoinHandle.join() called twice"))
    }

    @Test("unlocking a mutex the uthread does not hold")
    func unlockNotHeld() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 1))
            let m = UThreads.Mutex()
            rt.spawn { m.unlock() }.join()
        }
        #expect(stderrText(result).contains("Mutex.unlock() by a uthread that does not hold the mutex"))
    }

    @Test("parking outside a uthread")
    func parkOutside() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            UThread.park()
        }
        #expect(stderrText(result).contains("UThread.park() must be called from a uthread"))
    }

    @Test("shutting down while a uthread is parked with nothing to wake it")
    func parkedAtShutdown() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 2, spinBeforeSleep: .zero))
            rt.spawn { UThread.park() }
            usleep(20_000)
            rt.shutdown()
        }
        #expect(stderrText(result).contains("parked with nothing left to wake them"))
    }

    @Test("shutting a runtime down from its own uthread")
    func shutdownFromInside() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 1))
            rt.spawn { rt.shutdown() }.join()
        }
        #expect(stderrText(result).contains("called from one of its own uthreads"))
    }

    @Test("a stack overflow is reported with the uthread and its stack")
    func stackOverflow() async {
        let result = await #expect(processExitsWith: .signal(SIGABRT), observing: [\.standardErrorContent]) {
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 1, stackSize: 64 * 1024))
            rt.spawn { _ = recurse(1 << 20) }.join()
        }
        let text = stderrText(result)
        #expect(text.contains("UThreads: stack overflow in uthread"))
        #expect(text.contains("64 KiB"))
    }

    @Test("a bad configuration is a typed error, not a crash")
    func badConfiguration() {
        #expect(throws: RuntimeError.invalidConfiguration("kthreads must be 1...1024, got 0")) {
            _ = try Runtime(RuntimeConfiguration(kthreads: 0))
        }
        #expect(throws: RuntimeError.self) {
            _ = try Runtime(RuntimeConfiguration(stackSize: 100))
        }
    }
}

func stderrText(_ result: ExitTest.Result?) -> String {
    guard let bytes = result?.standardErrorContent else { return "" }
    return String(decoding: bytes, as: UTF8.self)
}

/// Burns about 1 KiB of stack per call.
@inline(never)
func recurse(_ depth: Int) -> Int {
    if depth == 0 { return 0 }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buf in
        buf.initialize(repeating: UInt8(truncatingIfNeeded: depth))
        return Int(buf[depth % 1024]) &+ recurse(depth - 1)
    }
}
