// ProcessRunner.swift: fixtures shared by the test targets: running a command and
// collecting its output, and compiling the C programs under Tests/Programs.
import Foundation

/// What a finished command printed and how it ended (128 + N for death by signal N).
public struct ProcessOutput: Equatable, CustomStringConvertible, Sendable {
    public var stdout: String
    public var stderr: String
    public var status: Int32
    public init(stdout: String, stderr: String, status: Int32) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
    }
    public var description: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// Starts `p` with no signal blocked. The test runner's threads block most signals and a
/// child inherits its spawner's mask across exec, as Linux keeps it, so a program waiting
/// for a signal (sockets.c's SIGUSR1 during recv) would wait forever, natively and under
/// junction alike, depending on which thread started it. Spawning happens on the calling
/// thread, so its mask is cleared for the length of the spawn.
public func runUnmasked(_ p: Process) throws {
    var none = sigset_t(), old = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    try p.run()
}

/// Runs `path` with `args` (and `environment`, when given), feeding `stdin`.
public func runProcess(_ path: String, _ args: [String], environment: [String: String]? = nil,
                       stdin: String? = nil, currentDirectory: String? = nil) throws -> ProcessOutput {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let currentDirectory { p.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe(), input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try runUnmasked(p)
    // A hung program (a deadlock under test) is killed after two minutes, so the suite
    // reports it instead of waiting for CI's limit.
    let watchdog = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
    defer { watchdog.cancel() }
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    return ProcessOutput(stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self), status: status)
}

/// Tests/Programs, from this file's location.
public let testProgramsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Programs")

/// A scratch directory for this test process.
public let testScratchDirectory: URL = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}()

public struct CompileError: Error, CustomStringConvertible {
    public let description: String
}

/// Compiles Tests/Programs/NAME.c with gcc and `flags` into the scratch directory (once).
public func compileTestProgram(_ name: String, flags: [String], as output: String) throws -> String {
    let out = testScratchDirectory.appendingPathComponent(output).path
    if FileManager.default.fileExists(atPath: out) { return out }
    let src = testProgramsDirectory.appendingPathComponent("\(name).c").path
    let r = try runProcess("/usr/bin/gcc", ["-O1", "-o", out, src] + flags + ["-lpthread"])
    guard r.status == 0 else { throw CompileError(description: "gcc \(name): \(r.stderr)") }
    return out
}

/// A binary built next to the test bundle (`swift build --build-tests` builds them all).
public func siblingExecutable(_ name: String) -> String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent(name).path
}
