// SyscallsSuite.swift: `junction-bench syscalls`: a C program (Benchmarks/Programs/
// syscalls.c, built at run time) measuring getpid, a pthread condvar ping-pong and a pipe
// ping-pong, a 1-byte read of /dev/zero, clock_gettime as a system call, run under junction and natively in the same run.
import ArgumentParser
import Foundation

struct SyscallsSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "syscalls",
                                                    abstract: "Intercepted system calls versus native ones.")
    @OptionGroup var options: SuiteOptions

    func run() throws {
        let o = options
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Programs/syscalls.c").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-bench-syscalls-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = dir.appendingPathComponent("syscalls").path
        guard spawnAndWait("/usr/bin/gcc", ["gcc", "-O2", "-o", program, source, "-lpthread"]) == 0 else {
            throw ValidationError("gcc could not build \(source)")
        }
        let junction = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("junction").path
        guard FileManager.default.isExecutableFile(atPath: junction) else {
            throw ValidationError("junction is not built next to junction-bench: swift build -c release --product junction")
        }
        var results: [BenchResult] = []
        for (mode, name, n) in [("getpid", "getpid() (glibc: mov $39,%eax; syscall)", 200_000),
                                ("read1", "read of 1 byte from /dev/zero (glibc: syscall; cmp)", 200_000),
                                ("clock", "clock_gettime as a system call (glibc syscall(): syscall; cmp)", 200_000),
                                ("condvar", "pthread condvar ping-pong round trip", 50_000),
                                ("pipe", "pipe ping-pong round trip between two threads", 50_000)] where o.wants(name) {
            let count = String(o.iterations(n))
            let rewrite = try median(3) { try measure(junction, ["--intercept", "rewrite", "--", program, mode, count]) }
            let xsave = try median(3) {
                try measure(junction, ["--intercept", "rewrite", "--", program, mode, count], environment: ["JUNCTION_FAST_PATH_XSAVE": "1"])
            }
            let trap = try median(3) { try measure(junction, ["--intercept", "trap", "--", program, mode, count]) }
            let native = try median(3) { try measure(program, [mode, count]) }
            results.append(BenchResult(name: name + ", junction (rewritten sites)", unit: "ns", spread: rewrite,
                                       peers: ["native Linux": native, "junction trap path only": trap,
                                               "junction rewritten sites, XSAVE/XRSTOR instead of moves": xsave]))
        }
        o.emit(SuiteReport(suite: "syscalls", results: results))
    }

    /// `n` runs of `body`: min, median, max.
    func median(_ n: Int, _ body: () throws -> Double) rethrows -> Spread { try repeated(n, body) }

    /// Runs a program that prints one number and returns it.
    func measure(_ path: String, _ args: [String], environment: [String: String] = [:]) throws -> Double {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let v = Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("\(path) \(args) failed (status \(p.terminationStatus))")
        }
        return v
    }
}
