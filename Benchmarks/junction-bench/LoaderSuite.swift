// LoaderSuite.swift: `junction-bench loader`: running /bin/true-like static and dynamic
// programs to exit through elf-run, beside the kernel's own execve (posix_spawn + wait).
import ArgumentParser
import Foundation
import Loader

struct LoaderSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loader",
                                                    abstract: "ELF loading: elf-run versus the kernel's execve.")
    @OptionGroup var options: SuiteOptions

    func run() throws {
        let o = options
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-bench-loader-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("true.c").path
        try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
        let staticTrue = dir.appendingPathComponent("true-static").path
        let dynamicTrue = dir.appendingPathComponent("true-dynamic").path
        for (out, flags) in [(staticTrue, ["-static"]), (dynamicTrue, [])] {
            guard spawnAndWait("/usr/bin/gcc", ["gcc", "-O2", "-o", out, source] + flags) == 0 else {
                throw ValidationError("gcc could not build \(out) (install build-essential)")
            }
        }
        let elfRun = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("elf-run").path
        guard FileManager.default.isExecutableFile(atPath: elfRun) else {
            throw ValidationError("elf-run is not built next to junction-bench: swift build -c release --static-swift-stdlib --product elf-run")
        }
        let n = o.iterations(300)
        let fixedCost = timeSpawns(n, elfRun, ["elf-run", "--startup-only"], expect: 0)
        var results: [BenchResult] = []
        for (label, program) in [("static", staticTrue), ("dynamic", dynamicTrue)] {
            let native = timeSpawns(n, program, [program], expect: 0)
            let ours = timeSpawns(n, elfRun, ["elf-run", program], expect: 0)
            results.append(BenchResult(name: "\(label) true: spawn to exit through elf-run", unit: "us", spread: ours,
                                       peers: ["kernel: posix_spawn + wait": native,
                                               "elf-run with nothing to load (its own Swift start-up)": fixedCost]))
            let inProcess = spreadNanos(iterations: o.iterations(200)) { n in
                let start = nowNanos()
                for _ in 0..<n {
                    let ready = try! Loader.load(path: program, arguments: [program], environment: ["A=1"])
                    ready.unmap()
                }
                return nowNanos() - start
            }.divided(by: 1000)
            results.append(BenchResult(name: "\(label) true: Loader.load in-process (resolve+map+stack)", unit: "us",
                                       spread: inProcess, peers: ["kernel: posix_spawn + wait": native]))
        }
        o.emit(SuiteReport(suite: "loader", results: results))
    }

    /// Microseconds for posix_spawn + waitpid of `path`, over `n` spawns.
    func timeSpawns(_ n: Int, _ path: String, _ argv: [String], expect: Int32) -> Spread {
        for _ in 0..<10 { _ = spawnAndWait(path, argv) }
        var samples: [Double] = []
        for _ in 0..<n {
            let start = nowNanos()
            let status = spawnAndWait(path, argv)
            samples.append((nowNanos() - start) / 1000)
            precondition(status == expect, "\(argv) exited \(status), expected \(expect)")
        }
        return Spread(samples)
    }
}

/// posix_spawn + waitpid; returns the exit status (or 128 + signal).
func spawnAndWait(_ path: String, _ argv: [String]) -> Int32 {
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let rc = posix_spawn(&pid, path, nil, nil, cArgs, environ)
    guard rc == 0 else { return -rc }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
}
