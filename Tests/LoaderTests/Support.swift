// Support.swift: fixtures for the Loader tests: compiling the C programs under
// Tests/Programs, running commands, and finding the elf-run example.
import Foundation
import Testing

enum Fixtures {
    /// Tests/Programs, found from this file's location.
    static let programsDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Programs")

    /// A scratch directory for this test process.
    static let scratch: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-loader-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// The elf-run example next to this test binary (built by `swift build --build-tests`).
    static var elfRun: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("elf-run").path
    }

    /// Compiles Tests/Programs/NAME.c with gcc and `flags` into the scratch directory.
    static func compile(_ name: String, flags: [String], as output: String) throws -> String {
        let src = programsDirectory.appendingPathComponent("\(name).c").path
        let out = scratch.appendingPathComponent(output).path
        if FileManager.default.fileExists(atPath: out) { return out }
        let r = try run("/usr/bin/gcc", ["-O1", "-o", out, src] + flags + ["-lpthread"])
        guard r.status == 0 else { throw FixtureError.compile(name, r.stderr) }
        return out
    }

    struct Output: Equatable, CustomStringConvertible {
        var stdout: String
        var stderr: String
        var status: Int32
        var description: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// Runs `path` with `args` and an explicit environment; collects output and status.
    static func run(_ path: String, _ args: [String], environment: [String: String]? = nil,
                    stdin: String? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Output(stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self), status: status)
    }

    static func write(_ name: String, _ contents: String, executable: Bool = true) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        if executable { chmod(path, 0o755) }
        return path
    }

    static func writeBytes(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }
}

enum FixtureError: Error { case compile(String, String) }
