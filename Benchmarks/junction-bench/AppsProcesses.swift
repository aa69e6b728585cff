// AppsProcesses.swift: how `junction-bench apps` runs servers and clients: each in a
// process group of its own (stdin /dev/null, stdout and stderr to files), CPU seconds
// from /proc and wait4, a TAP's blackhole route, and the cleanup of all of them when a
// case fails or the run is interrupted (Ctrl-C, SIGTERM, SIGHUP).
import Foundation
import Glibc
import Synchronization

/// The signal that interrupted the run, or 0. The handler only records it; every wait in
/// the suite polls it and unwinds, so the `defer`s stop processes and remove links.
let appsInterrupted = Atomic<Int32>(0)

struct Interrupted: Error, CustomStringConvertible {
    var description: String { "interrupted" }
}

func installInterruptHandlers() {
    for s in [SIGINT, SIGTERM, SIGHUP] {
        signal(s) { appsInterrupted.store($0, ordering: .relaxed) }
    }
}

func checkInterrupted() throws {
    if appsInterrupted.load(ordering: .relaxed) != 0 { throw Interrupted() }
}

/// Monotonic seconds.
func nowSeconds() -> Double { nowNanos() / 1e9 }

/// A child process in its own process group (so a stop reaches whatever it forked),
/// with its output in files. Stopped (SIGTERM, then SIGKILL) when released.
final class AppProcess {
    let pid: pid_t
    let label: String
    let outPath: String, errPath: String
    private(set) var status: Int32?
    /// Resource use of the process and the children it waited for, once reaped.
    private(set) var usage = rusage()

    /// - Parameters:
    ///   - argv: the program (an absolute path, or a name looked up in PATH) and its arguments.
    ///   - label: a file-name-safe name for its output files in `dir`.
    init(_ argv: [String], label: String, dir: String) throws {
        self.label = label
        outPath = dir + "/" + label + ".out"
        errPath = dir + "/" + label + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, cArgs, environ)
        guard rc == 0 else { throw BenchFailure("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Reaps the process if it has exited; its wait status, or nil while it runs.
    @discardableResult
    func poll() -> Int32? {
        if let status { return status }
        var s: Int32 = 0
        if wait4(pid, &s, WNOHANG, &usage) == pid { status = s }
        return status
    }

    /// Waits until the process exits or `deadline` (monotonic seconds) passes; true if it exited.
    func wait(until deadline: Double, interruptible: Bool = true) throws -> Bool {
        while poll() == nil {
            if interruptible { try checkInterrupted() }
            if nowSeconds() >= deadline { return false }
            usleep(2000)
        }
        return true
    }

    /// SIGTERM to the group, SIGKILL after `grace` seconds, then reaped.
    func stop(grace: Double = 1) {
        if poll() == nil { Glibc.kill(-pid, SIGTERM) }
        let deadline = nowSeconds() + grace
        while poll() == nil && nowSeconds() < deadline { usleep(2000) }
        Glibc.kill(-pid, SIGKILL)   // also whatever it forked
        while status == nil {
            var s: Int32 = 0
            let r = wait4(pid, &s, 0, &usage)
            if r == pid { status = s } else if r < 0 && errno != EINTR { status = -1 }
        }
    }

    deinit { stop(grace: 0.2) }

    var output: String { readWholeFile(outPath) ?? "" }
    var errors: String { readWholeFile(errPath) ?? "" }

    /// User+system CPU seconds of the process and its waited-for children, from
    /// /proc/PID/stat while it runs or is a zombie.
    var cpuSeconds: Double? { procCPUSeconds(pid) }

    /// The same from wait4, once reaped.
    var reapedCPUSeconds: Double? {
        guard status != nil else { return nil }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    /// "exited N" or "killed by signal N".
    var statusText: String {
        guard let s = status else { return "running" }
        return s & 0x7f == 0 ? "exited \((s >> 8) & 0xff)" : "killed by signal \(s & 0x7f)"
    }
}

/// A whole small file (such as /proc/PID/stat, whose size reads as 0), or nil.
func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// utime + stime + cutime + cstime of `pid` in seconds (fields 14 to 17 of /proc/PID/stat).
func procCPUSeconds(_ pid: pid_t) -> Double? {
    guard let text = readWholeFile("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: paren)...].split(separator: " ")   // fields[0] is field 3 (state)
    guard fields.count > 14 else { return nil }
    var ticks = 0.0
    for i in 11...14 { ticks += Double(fields[i]) ?? 0 }
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The absolute path of `name` in PATH (and the sbin directories), or nil.
func findTool(_ name: String) -> String? {
    if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin:/usr/local/sbin"
    for dir in path.split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
    return nil
}

/// Runs a short host command (at most `seconds`); its status and stdout.
@discardableResult
func runTool(_ argv: [String], dir: String, seconds: Double = 10, interruptible: Bool = true) throws -> (status: Int32, output: String) {
    let p = try AppProcess(argv, label: "tool", dir: dir)
    guard try p.wait(until: nowSeconds() + seconds, interruptible: interruptible) else { p.stop(); throw BenchFailure("\(argv.joined(separator: " ")) took over \(seconds) s") }
    let s = p.status ?? -1
    return (s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f), p.output)
}

/// The CPUs this process may run on, in order (Cpus_allowed_list in /proc/self/status).
func allowedCPUs() -> [Int] {
    let status = readWholeFile("/proc/self/status") ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [0] }
    var cpus: [Int] = []
    for range in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
        let ends = range.split(separator: "-").compactMap { Int($0) }
        if ends.count == 1 { cpus.append(ends[0]) } else if ends.count == 2, ends[0] <= ends[1] { cpus += Array(ends[0]...ends[1]) }
    }
    return cpus.isEmpty ? [0] : cpus
}

/// A free TCP port on 127.0.0.1 (bound and released; the native servers then bind it).
func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchFailure("socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw BenchFailure("no free port on 127.0.0.1: \(errno)") }
    return UInt16(bigEndian: addr.sin_port)
}

/// A TAP name and /24 of this run (10.218.x: no test uses it), its blackhole route while
/// it exists (so nothing meant for the subnet leaves by another route), and its removal.
final class TapLink {
    static let counter = Atomic<Int>(0)
    let name: String
    let subnet: String
    let dir: String
    var instance: String { "\(subnet).2" }
    var host: String { "\(subnet).1" }
    private var routed = false

    init(dir: String) throws {
        let n = Self.counter.add(1, ordering: .relaxed).newValue
        name = "jba\(getpid() % 100_000)\(n % 100)"
        subnet = "10.218.\((Int(getpid()) &* 7 &+ n) % 200 + 30)"
        self.dir = dir
        let r = try runTool(["ip", "route", "add", "blackhole", "\(subnet).0/24", "metric", "4000"], dir: dir)
        guard r.status == 0 else { throw BenchFailure("ip route add blackhole \(subnet).0/24 failed (status \(r.status))") }
        routed = true
    }

    /// Waits until junction gave the TAP's host side its address.
    func waitForHostAddress(server: AppProcess, until deadline: Double) throws {
        while nowSeconds() < deadline {
            try checkInterrupted()
            if let r = try? runTool(["ip", "-o", "-4", "addr", "show", "dev", name], dir: dir), r.output.contains(host + "/") { return }
            if server.poll() != nil { throw BenchFailure("the server under junction \(server.statusText) before the TAP was up: \(server.errors.suffix(400))") }
            usleep(20_000)
        }
        throw BenchFailure("the TAP \(name) did not get \(host) in time")
    }

    func remove() {
        _ = try? runTool(["ip", "link", "del", name], dir: dir, interruptible: false)   // normally gone with junction
        if routed { _ = try? runTool(["ip", "route", "del", "blackhole", "\(subnet).0/24", "metric", "4000"], dir: dir, interruptible: false) }
        routed = false
    }

    deinit { remove() }
}
