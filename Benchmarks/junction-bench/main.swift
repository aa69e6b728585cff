// main.swift: junction-bench, one subcommand per suite; each prints our figures beside
// peers measured in the same run (`--json` for machine-readable output).
import ArgumentParser

struct JunctionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "junction-bench",
        abstract: "Measure Junction's components beside their peers, in one run.",
        subcommands: [ThreadsSuite.self, LoaderSuite.self, FilesSuite.self, SyscallsSuite.self, StartupSuite.self, ProcessesSuite.self, NicSuite.self, UdpSuite.self, TcpSuite.self, ProbeSuite.self, AppsSuite.self])
}

struct SuiteOptions: ParsableArguments {
    @Flag(help: "Print {\"suite\", \"results\": [{name, unit, value, peers}]} as JSON.")
    var json = false

    @Option(help: "Scale every iteration count by this factor (e.g. 0.1 for a quick run).")
    var scale: Double = 1.0

    @Option(help: "Run only the figures whose name contains this text.")
    var only: String?

    func wants(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func iterations(_ n: Int) -> Int { max(1, Int(Double(n) * scale)) }

    func emit(_ report: SuiteReport) {
        if json { report.printJSON() } else { report.printTable() }
    }
}

JunctionBench.main()
