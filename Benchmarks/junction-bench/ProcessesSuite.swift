// ProcessesSuite.swift: `junction-bench processes`: fork+exit+wait, posix_spawn+wait of a
// static and a dynamic program, and a 10-stage shell pipeline (Benchmarks/Programs/
// processes.c, built at run time), each under junction and natively in the same run.
import ArgumentParser
import Foundation

struct ProcessesSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "processes",
                                                    abstract: "Making processes under junction versus natively.")
    @OptionGroup var options: SuiteOptions

    func run() throws {
        let o = options
        let programs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Programs")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-bench-processes-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = dir.appendingPathComponent("processes").path
        let empty = dir.appendingPathComponent("empty.c")
        try "int main(void) { return 0; }\n".write(to: empty, atomically: true, encoding: .utf8)
        let staticTrue = dir.appendingPathComponent("true-static").path, dynamicTrue = dir.appendingPathComponent("true-dynamic").path
        for (args, what) in [(["gcc", "-O2", "-o", program, programs.appendingPathComponent("processes.c").path], "processes.c"),
                             (["gcc", "-O2", "-static", "-o", staticTrue, empty.path], "a static program"),
                             (["gcc", "-O2", "-o", dynamicTrue, empty.path], "a dynamic program")] {
            guard spawnAndWait("/usr/bin/gcc", args) == 0 else { throw ValidationError("gcc could not build \(what)") }
        }
        let junction = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("junction").path
        guard FileManager.default.isExecutableFile(atPath: junction) else {
            throw ValidationError("junction is not built next to junction-bench: swift build -c release --product junction")
        }
        let syscalls = SyscallsSuite()
        var results: [BenchResult] = []
        for (args, name, n) in [(["fork"], "fork + exit + waitpid", 200),
                                (["spawn", staticTrue], "posix_spawn + waitpid of a static program", 200),
                                (["spawn", dynamicTrue], "posix_spawn + waitpid of a dynamic program", 200),
                                (["pipeline"], "sh -c with a 10-stage pipeline (posix_spawn + waitpid)", 40)] where o.wants(name) {
            let count = String(o.iterations(n))
            // Junction and native runs alternate, so a change in the machine's load
            // (other builds) falls on both.
            var ours: [Double] = [], native: [Double] = []
            for _ in 0..<5 {
                ours.append(try syscalls.measure(junction, ["--", program] + [args[0], count] + args.dropFirst()))
                native.append(try syscalls.measure(program, [args[0], count] + args.dropFirst()))
            }
            results.append(BenchResult(name: name + ", junction", unit: "ns", spread: Spread(ours), peers: ["native Linux": Spread(native)]))
        }
        o.emit(SuiteReport(suite: "processes", results: results))
    }
}
