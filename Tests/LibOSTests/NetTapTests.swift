// NetTapTests.swift: unmodified servers under `junction --net tap:NAME` (their sockets on
// NetStack) driven from the host over a TAP the instance creates: redis-server by
// redis-cli and redis-benchmark, memcached by a python3 client. Each test uses a unique
// TAP name and 10.214.x.0/24 subnet, holds a blackhole route for the subnet while it
// runs (nothing leaves by the default route if the instance dies) and removes both.
import Foundation
import Synchronization
import Testing
import TestSupport

let runningAsRoot = getuid() == 0
private let tapCounter = Atomic(0)

func hasTool(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

/// A program under junction on a fresh TAP: the host's side at .1, the instance at .2.
final class JunctionOnTap {
    let name: String
    let subnet: String
    let process: ChildProcess
    var instance: String { "\(subnet).2" }
    var host: String { "\(subnet).1" }

    /// A fresh TAP name and /24 subnet prefix (10.214.x) for one test.
    static func allocate() -> (name: String, subnet: String) {
        let n = tapCounter.add(1, ordering: .relaxed).newValue
        return ("jnt\(getpid() % 100_000)\(n)", "10.214.\((Int(getpid()) &* 7 &+ n) % 200 + 30)")
    }

    /// `options`: more junction options (e.g. --dns) before the program; `allocated`:
    /// the name and subnet from `allocate()` when the test needed them first;
    /// `environment`: NAME=VALUE settings for junction (through env(1)).
    init(_ program: [String], options: [String] = [], allocated: (name: String, subnet: String)? = nil,
         environment: [String] = []) throws {
        (name, subnet) = allocated ?? Self.allocate()
        try runCommand("ip", "route", "add", "blackhole", "\(subnet).0/24", "metric", "4000")
        do {
            process = try ChildProcess((environment.isEmpty ? [] : ["/usr/bin/env"] + environment) + [siblingExecutable("junction"), "--net", "tap:\(name)", "--ip", "\(subnet).2/24",
                                        "--host-ip", "\(subnet).1/24"] + options + ["--"] + program)
        } catch {
            _ = try? runCommand("ip", "route", "del", "blackhole", "\(subnet).0/24", "metric", "4000")
            throw error
        }
    }

    /// Waits until the TAP's host side has its address (junction set it up), so probing
    /// the instance cannot leave by another route.
    func waitForTap(seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let out = try? runCommand("ip", "-o", "-4", "addr", "show", "dev", name), out.contains(host) { return true }
            if process.poll() != nil { return false }
            usleep(20_000)
        }
        return false
    }

    /// Runs `check` until it succeeds (the server is listening) or `seconds` pass.
    func waitUntil(seconds: Double = 20, _ check: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if check() { return true }
            if process.poll() != nil { return false }
            usleep(50_000)
        }
        return false
    }

    func finish() -> String {
        _ = process.stop()
        _ = try? runCommand("ip", "link", "del", name)   // normally gone with the process
        _ = try? runCommand("ip", "route", "del", "blackhole", "\(subnet).0/24", "metric", "4000")
        return process.output
    }

    deinit { _ = finish() }
}

/// Whether python3 under junction runs `code` successfully (a probe for a system call).
func junctionAnswers(_ code: String) -> Bool {
    guard runningAsRoot, let r = try? runProcess(siblingExecutable("junction"), ["--", "/usr/bin/python3", "-c", code]) else { return false }
    return r.status == 0
}

/// A host command's stdout (trimmed), or nil when it failed.
func output(_ path: String, _ args: [String], seconds: Double = 20) -> String? {
    guard let r = try? runProcess(path, args), r.status == 0 else { return nil }
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("servers under junction --net tap", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: runningAsRoot, "needs root: creates TAP interfaces and routes"))
struct NetTapTests {
    @Test(.enabled(if: hasTool("/usr/bin/redis-server") && hasTool("/usr/bin/redis-cli") && hasTool("/usr/bin/redis-benchmark"),
                   "needs redis-server and redis-tools"))
    func redisDrivenFromTheHost() throws {
        let tap = try JunctionOnTap(["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", "--save", "",
                                     "--appendonly", "no", "--protected-mode", "no", "--io-threads", "1"])
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        func cli(_ args: String...) -> String? { output("/usr/bin/redis-cli", ["-h", tap.instance, "-p", "6379"] + args) }
        #expect(tap.waitUntil { cli("PING") == "PONG" }, "redis-server did not answer: \(tap.process.output)")
        #expect(cli("SET", "greeting", "hello from the host") == "OK")
        #expect(cli("GET", "greeting") == "hello from the host")
        #expect(cli("INCR", "counter") == "1")
        #expect(cli("INCRBY", "counter", "41") == "42")
        #expect(cli("RPUSH", "list", "a", "b", "c") == "3")
        #expect(cli("LRANGE", "list", "0", "-1") == "a\nb\nc")
        let big = String(repeating: "x", count: 100_000)
        #expect(cli("SET", "big", big) == "OK")
        #expect(cli("STRLEN", "big") == "100000")
        let bench = output("/usr/bin/redis-benchmark", ["-h", tap.instance, "-p", "6379", "-n", "2000", "-c", "10", "-q", "-t", "set,get"])
        #expect(bench?.contains("SET:") == true && bench?.contains("GET:") == true, "redis-benchmark: \(bench ?? "failed")")
        print("redis-benchmark over TAP: \(bench ?? "-")")
    }

    /// A program that never parks (it spins on zero-timeout poll and select) on one
    /// kthread without preemption: NetStack's receive runs from the kthread's poll hooks,
    /// which poll and select must run themselves, or the instance never even answers ARP.
    @Test("a program spinning on poll(0)/select(0) still gets its frames (--kthreads 1 --quantum 0)")
    func spinningPollRunsTheReceiveHooks() throws {
        let prog = try Junction.compile("poll_spin", [], as: "poll_spin")
        let native = try runProcess(prog, [])
        #expect(native.stdout == "poll: pong\nselect: pong\n")
        let loopback = try runProcess(siblingExecutable("junction"), ["--net", "loopback", "--ip", "10.9.0.2/24", "--kthreads", "1",
                                                                     "--quantum", "0", "--", prog])
        #expect(loopback.stdout == native.stdout, "\(loopback.stderr)")
        let tap = try JunctionOnTap([prog, "serve", "7788"], options: ["--kthreads", "1", "--quantum", "0"])
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        let client = """
        import socket, sys, time
        end = time.time() + 30
        while True:
            try:
                s = socket.create_connection((sys.argv[1], 7788), timeout=10)
                break
            except OSError:
                if time.time() > end: raise
                time.sleep(0.1)
        s.sendall(b'ping')
        print(s.recv(16).decode())
        """
        let answer = output("/usr/bin/python3", ["-c", client, tap.instance], seconds: 60)
        #expect(answer == "pong", "server: \(tap.process.output)")
        _ = tap.process.wait(seconds: 20)
        #expect(tap.process.output.contains("served ping"), "\(tap.process.output)")
    }

    @Test func interfaceQueriesAndTheInStackLoopback() throws {
        let program = """
        import socket, fcntl, struct, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for name in ('lo', sys.argv[1]):
            r = fcntl.ioctl(s, 0x8915, struct.pack('256s', name.encode()))   # SIOCGIFADDR
            print(name, socket.inet_ntoa(r[20:24]), socket.if_nametoindex(name))
        try: fcntl.ioctl(s, 0x8915, struct.pack('256s', b'nosuch0'))
        except OSError as e: print('nosuch0', e.errno)
        v6 = socket.socket(socket.AF_INET6); v6.bind(('::', 8080)); v6.listen()
        c = socket.create_connection(('127.0.0.1', 8080))
        a, peer = v6.accept()
        c.sendall(b'x' * 100000); c.close()
        n = 0
        while True:
            d = a.recv(65536)
            if not d: break
            n += len(d)
        print(peer[0], n)
        """
        let n = tapCounter.load(ordering: .relaxed) + 1
        let name = "jnt\(getpid() % 100_000)\(n)"
        let tap = try JunctionOnTap(["/usr/bin/python3", "-c", program, name])
        defer { _ = tap.finish() }
        #expect(tap.name == name)
        #expect(tap.process.wait(seconds: 25) == 0, "\(tap.process.output)")
        #expect(tap.process.output == "lo 127.0.0.1 1\n\(name) \(tap.instance) 2\nnosuch0 19\n::ffff:127.0.0.1 100000\n")
    }

    @Test("sockets.c under junction --net tap prints what it prints natively (but IP_RECVTOS)")
    func socketCallsOnNetStack() throws {
        let prog = try Junction.compile("sockets", ["-pthread"], as: "sockets-netstack")
        let native = try Junction.run(prog, [])
        let tap = try JunctionOnTap([prog])
        defer { _ = tap.finish() }
        #expect(tap.process.wait(seconds: 60) == native.status, "\(tap.process.output)")
        // NetStack keeps no TOS per datagram: IP_RECVTOS is ENOPROTOOPT, so no TOS cmsg.
        func kept(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter {
                !$0.hasPrefix("setsockopt(u, IPPROTO_IP, IP_RECVTOS") && !$0.hasPrefix("cmsg level 0 type 1 ")
                    && !$0.hasPrefix("ctrunc ")
            }
        }
        let ours = kept(tap.process.output), theirs = kept(native.stdout + native.stderr)
        #expect(ours == theirs, "native:\n\(native)\njunction --net:\n\(tap.process.output)")
    }

    // memcached started by root drops its supplementary groups (setgroups) before it serves.
    @Test(.enabled(if: hasTool("/usr/bin/memcached"), "needs memcached"))
    func memcachedDrivenFromTheHost() throws {
        let tap = try JunctionOnTap(["/usr/bin/memcached", "-u", "root", "-l", "0.0.0.0", "-p", "11211", "-U", "0", "-t", "2"])
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        let client = """
        import socket, sys
        s = socket.create_connection((sys.argv[1], 11211), timeout=10)
        f = s.makefile('rb')
        def line(): return f.readline().rstrip(b'\\r\\n')
        for i in range(300):
            v = (b'value-%d-' % i) * (1 + i % 40)
            s.sendall(b'set key%d 0 0 %d\\r\\n%s\\r\\n' % (i, len(v), v))
            assert line() == b'STORED', i
        bad = 0
        for i in range(300):
            s.sendall(b'get key%d\\r\\n' % i)
            h = line().split()
            v = f.read(int(h[3]) + 2)[:-2]
            assert line() == b'END'
            bad += v != (b'value-%d-' % i) * (1 + i % 40)
        print('checked', 300 - bad)
        """
        func probe() -> Bool {
            output("/usr/bin/python3", ["-c", "import socket,sys; socket.create_connection((sys.argv[1], 11211), timeout=1).close()",
                                        tap.instance]) != nil
        }
        #expect(tap.waitUntil(probe), "memcached did not listen: \(tap.process.output)")
        #expect(output("/usr/bin/python3", ["-c", client, tap.instance]) == "checked 300")
    }
}

@Suite("junction --net options")
struct NetOptionTests {
    @Test func badNetworkOptionsAreRefusedClearly() throws {
        let j = siblingExecutable("junction")
        let noIP = try runProcess(j, ["--net", "tap:jx0", "--", "/bin/true"])
        #expect(noIP.status == 2 && noIP.stderr.contains("--net needs --ip"), "\(noIP)")
        let noNet = try runProcess(j, ["--ip", "10.0.0.2/24", "--", "/bin/true"])
        #expect(noNet.status == 2 && noNet.stderr.contains("go with --net"), "\(noNet)")
        let kind = try runProcess(j, ["--net", "bogus:x", "--ip", "10.0.0.2/24", "--", "/bin/true"])
        #expect(kind.status == 1 && kind.stderr.contains("unknown device kind 'bogus'"), "\(kind)")
        let prefix = try runProcess(j, ["--net", "shm:/nonexistent/link", "--ip", "10.0.0.2/33", "--", "/bin/true"])
        #expect(prefix.status == 1 && prefix.stderr.contains("--ip '10.0.0.2/33'"), "\(prefix)")
        let hostIP = try runProcess(j, ["--net", "shm:/nonexistent/link", "--ip", "10.0.0.2/24", "--host-ip", "10.0.0.1/24", "--", "/bin/true"])
        #expect(hostIP.status == 1 && hostIP.stderr.contains("--host-ip is for --net tap:NAME only"), "\(hostIP)")
    }
}
