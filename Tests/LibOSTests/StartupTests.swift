// StartupTests.swift: what the start-up work (issue 17) must not change: call sites
// rewritten while other kthreads run, park or sit in their scheduler, the options-free
// command line, clock_gettime answered through the libOS's vDSO, and the leaf calls
// answered by the entry code itself.
import Foundation
import TestSupport
import Testing

@Suite("start-up and rewriting", .serialized, .timeLimit(.minutes(3)))
struct StartupTests {
    @Test("clock_gettime as a system call from threads on 1, 2 and 4 kthreads: as native",
          arguments: [["--kthreads", "1"], ["--kthreads", "2"], ["--kthreads", "4"], []])
    func clockFromThreads(_ options: [String]) throws {
        let program = try Junction.compile("clock_syscall", ["-O2", "-pthread"], as: "clock_syscall")
        let native = try Junction.run(program, [])
        let ours = try Junction.run(Junction.binary, options + ["--", program])
        #expect(ours == native, "native:\n\(native)\njunction \(options):\n\(ours)")
    }

    @Test("leaf calls (getpid, clock_gettime from rewritten sites) answer as native; --strace still sees every one",
          arguments: [["--kthreads", "1"], []])
    func leafCalls(_ options: [String]) throws {
        let program = try Junction.compile("leaf_calls", ["-O1"], as: "leaf_calls")
        let native = try Junction.run(program, [])
        #expect(native.stdout == "same pid 1, time forward 1, cpu clocks 1\n")
        let ours = try Junction.run(Junction.binary, options + ["--", program])
        #expect(ours == native, "\(ours)")
        // Tracing turns the leaf calls off: all three of each are printed.
        let traced = try Junction.run(Junction.binary, options + ["--strace", "--", program])
        #expect(traced.stdout == native.stdout)
        let lines = traced.stderr.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("getpid()") }.count == 3, "\(traced.stderr)")
        #expect(lines.filter { $0.hasPrefix("clock_gettime(7,") }.count == 3, "\(traced.stderr)")
    }

    @Test("signals reach a thread that makes nothing but leaf calls (the kick in and around a leaf call)",
          arguments: [["--kthreads", "2", "--quantum", "0"], ["--kthreads", "1"]])
    func signalsToLeafCaller(_ options: [String]) throws {
        let program = try Junction.compile("leaf_calls", ["-O1", "-pthread"], as: "leaf_calls_threads")
        let native = try Junction.run(program, ["signals"])
        #expect(native.stdout == "same pid 1, time forward 1, cpu clocks 1\nsignals delivered 200 of 200\n")
        let ours = try Junction.run(Junction.binary, options + ["--", program, "signals"])
        #expect(ours == native, "\(options): \(ours)")
    }

    @Test("junction PROGRAM and junction -- PROGRAM (no options of junction's) run the program")
    func noOptions() throws {
        let native = try Junction.run("/bin/busybox", ["sh", "-c", "echo a; exit 3"])
        #expect(native.status == 3)
        for prefix in [["--"], []] {
            let ours = try Junction.run(Junction.binary, prefix + ["/bin/busybox", "sh", "-c", "echo a; exit 3"])
            #expect(ours == native, "\(prefix): \(ours)")
        }
        // `--` with no program is still a usage error.
        let none = try Junction.run(Junction.binary, ["--"])
        #expect(none.status == 2)
    }
}
