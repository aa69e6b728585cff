// ChildProcess.swift: a child process for the interop tests (echo-server, ping, python3),
// started with an empty signal mask and default dispositions (the test runner blocks
// signals its children would inherit: ping paces itself with SIGALRM, echo-server stops
// on SIGTERM), its output in a file, killed and reaped when the test is done with it.
import Foundation
import Synchronization

private let childCounter = Atomic<Int>(0)

/// A failed command or spawn, with its output.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs a command (e.g. `ip`) through /usr/bin/env, throwing with its output (stdout and
/// stderr) when it fails.
@discardableResult
public func runCommand(_ args: String...) throws -> String {
    let r = try runProcess("/usr/bin/env", args)
    let text = r.stdout + r.stderr
    if r.status != 0 { throw CommandFailure("\(args.joined(separator: " ")): \(text)") }
    return text
}

public final class ChildProcess {
    public let pid: pid_t
    public let outputPath: String
    public private(set) var status: Int32?

    public init(_ args: [String]) throws {
        let n = childCounter.add(1, ordering: .relaxed).newValue
        outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("test-child-\(getpid())-\(n)").path
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var p: pid_t = 0
        let r = posix_spawnp(&p, args[0], &actions, &attr, argv, environ)
        if r != 0 { throw CommandFailure("spawn \(args[0]): \(String(cString: strerror(r)))") }
        pid = p
    }

    deinit {
        _ = kill()
        unlink(outputPath)
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// The exit status once it has exited (128 + N for signal N), or nil while it runs.
    public func poll() -> Int32? {
        if let status { return status }
        var s: Int32 = 0
        let r = waitpid(pid, &s, WNOHANG)
        if r == pid { status = (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f) }
        else if r < 0 { status = -1 }
        return status
    }

    /// Waits up to `seconds` for it to exit.
    public func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let s = poll() { return s }
            usleep(5_000)
        }
        return poll()
    }

    /// Waits up to `seconds` for `text` in its output.
    public func waitForOutput(_ text: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(text) { return true }
            if poll() != nil { return output.contains(text) }
            usleep(5_000)
        }
        return false
    }

    /// Sends `signal` and waits for the exit (SIGKILL after 5 s).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        if let s = poll() { return s }
        Glibc.kill(pid, signal)
        if let s = wait(seconds: 5) { return s }
        return kill()
    }

    /// Kills it (SIGKILL) and reaps it.
    @discardableResult
    public func kill() -> Int32 {
        if let s = poll() { return s }
        Glibc.kill(pid, SIGKILL)
        var s: Int32 = 0
        waitpid(pid, &s, 0)
        status = 128 + SIGKILL
        return status!
    }
}

/// Runs a command to completion (at most `seconds`), returning its status and output.
public func runChild(_ args: [String], seconds: Double = 20) throws -> (status: Int32, output: String) {
    let c = try ChildProcess(args)
    let s = c.wait(seconds: seconds) ?? c.kill()
    return (s, c.output)
}
