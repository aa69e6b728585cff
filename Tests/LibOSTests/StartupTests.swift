// StartupTests.swift: what the start-up work (issue 17) must not change: call sites
// rewritten while other kthreads run, park or sit in their scheduler, the options-free
// command line, and clock_gettime answered through the libOS's vDSO.
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
