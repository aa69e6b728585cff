// StartupSuite.swift: `junction-bench startup`: whole-process start-to-exit times of small
// programs, native versus under junction (default options and each --kthreads asked for),
// interleaved in the same run, medians as hyperfine would report them.
import ArgumentParser
import Foundation

struct StartupSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "startup",
                                                    abstract: "Program start-up to exit: native versus junction.")
    @OptionGroup var options: SuiteOptions

    @Option(help: "Also run junction with each of these --kthreads counts (e.g. --kthreads 1 --kthreads 2).")
    var kthreads: [Int] = []

    func run() throws {
        let o = options
        let junction = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("junction").path
        guard FileManager.default.isExecutableFile(atPath: junction) else {
            throw ValidationError("junction is not built next to junction-bench: swift build -c release --product junction")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-bench-startup-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("true.c").path
        try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
        let staticTrue = dir.appendingPathComponent("true-static").path
        guard spawnAndWait("/usr/bin/gcc", ["gcc", "-O2", "-static", "-o", staticTrue, source]) == 0 else {
            throw ValidationError("gcc could not build \(staticTrue) (install build-essential)")
        }
        var programs: [(String, [String], Int)] = [
            ("/bin/true (dynamic)", ["/bin/true"], 200),
            ("static true (gcc -static)", [staticTrue], 200),
        ]
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/busybox") {
            programs.append(("busybox true", ["/usr/bin/busybox", "true"], 200))
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") {
            programs.append(("python3 -c pass", ["/usr/bin/python3", "-c", "pass"], 40))
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/node") {
            programs.append(("node -e 0", ["/usr/bin/node", "-e", "0"], 20))
        }
        let variants: [(String, [String])] = [("default options", [])]
            + kthreads.map { ("--kthreads \($0)", ["--kthreads", String($0)]) }
        var results: [BenchResult] = []
        for (name, argv, n) in programs where o.wants(name) {
            // Native and each junction variant take turns, so that load from elsewhere on
            // the machine falls on all of them alike.
            let runs = [(argv[0], argv)] + variants.map { (junction, ["junction"] + $0.1 + ["--"] + argv) }
            var samples = Array(repeating: [Double](), count: runs.count)
            for (path, args) in runs { for _ in 0..<3 { _ = spawnAndWait(path, args) } }  // warm the page cache
            for _ in 0..<o.iterations(n) {
                for (i, (path, args)) in runs.enumerated() {
                    let start = nowNanos()
                    let status = spawnAndWait(path, args)
                    samples[i].append((nowNanos() - start) / 1e6)
                    guard status == 0 else { throw ValidationError("\(args) exited \(status)") }
                }
            }
            let spreads = samples.map { Spread($0) }
            var peers = ["native Linux": spreads[0]]
            for (i, v) in variants.enumerated().dropFirst() { peers["junction \(v.0)"] = spreads[i + 1] }
            results.append(BenchResult(name: name + ", junction (default options)", unit: "ms", spread: spreads[1], peers: peers))
        }
        o.emit(SuiteReport(suite: "startup", results: results))
    }
}
