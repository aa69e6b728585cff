// UnixSocketProgramTests.swift: AF_UNIX sockets differentially (C programs and python3
// run natively and under junction), and across the instance's edge: a host daemon
// reached from inside, an instance's listener reached from the host (--unix-export).
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two fresh directories of the same path length, one for each run (socket names are
/// printed with their lengths).
func unixScratchPair(_ tag: String) -> (native: String, junction: String) {
    let base = Junction.scratch.appendingPathComponent("ux-\(tag)-\(UInt32.random(in: 0...UInt32.max))").path
    for d in [base + "-n", base + "-j"] { try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
    return (base + "-n", base + "-j")
}

private let unixHasPython = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

@Suite("AF_UNIX sockets, native versus junction", .serialized, .timeLimit(.minutes(3)))
struct UnixSocketProgramTests {
    @Test("C programs: names, streams, datagrams and seqpacket, descriptors and credentials, /proc/net/unix",
          arguments: ["unix_names", "unix_stream", "unix_dgram", "unix_rights"])
    func programs(_ name: String) throws {
        let program = try Junction.compile(name, ["-I", testProgramsDirectory.path], as: name)
        let (n, j) = unixScratchPair(name)
        let native = try Junction.run(program, [n])
        let ours = try Junction.run(Junction.binary, ["--", program, j])
        #expect(native.status == 0, "\(native)")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("python3: socketserver.UnixStreamServer, asyncio.start_unix_server, multiprocessing.connection, send_fds/recv_fds",
          .enabled(if: unixHasPython))
    func python() throws {
        let (n, j) = unixScratchPair("py")
        let script = testProgramsDirectory.appendingPathComponent("unix_python.py").path
        let native = try Junction.run("/usr/bin/python3", [script, n])
        let ours = try Junction.run(Junction.binary, ["--", "/usr/bin/python3", script, j])
        #expect(native.status == 0, "\(native)")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }
}

/// A process whose stdout the test reads line by line (the "ready" handshake).
final class LineProcess {
    let process = Process()
    private let out = Pipe()
    private var buffer = Data()

    init(_ path: String, _ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.environment = Junction.environment
        process.standardOutput = out
        process.standardError = out
        process.standardInput = Pipe()  // open, so a program reading stdin waits
        try runUnmasked(process)
    }

    /// The next line, or nil at end of output.
    func line() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let l = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                return l
            }
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { return nil }
            buffer.append(d)
        }
    }

    func finish() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// A host AF_UNIX stream client: connects to `path`, sends `payload`, reads one line,
/// then reads to end of file. Returns the line and whether EOF followed.
func hostUnixExchange(_ path: String, _ payload: [UInt8]) -> (String, Bool)? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var a = sockaddr_un()
    a.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in path.utf8.enumerated() where i < 107 { p[i] = b } }
    let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    guard ok == 0 else { return nil }
    var sent = 0
    while sent < payload.count {
        let n = payload[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return nil }
        sent += n
    }
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while recv(fd, &byte, 1, 0) == 1 {
        if byte == 10 { break }
        line.append(byte)
    }
    let eof = recv(fd, &byte, 1, 0) == 0
    return (String(decoding: line, as: UTF8.self), eof)
}

@Suite("AF_UNIX sockets across the instance's edge", .serialized, .timeLimit(.minutes(2)), .enabled(if: unixHasPython))
struct UnixHostEdgeTests {
    @Test("a program under junction connects to a host daemon's socket file; SO_PEERCRED names the daemon")
    func hostDaemon() throws {
        let (dir, _) = unixScratchPair("daemon")
        let path = dir + "/daemon.sock"
        let daemon = try LineProcess("/usr/bin/python3", ["-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            print("ready", flush=True)
            c, _ = s.accept(); data = b""
            while not data.endswith(b"\\n"): data += c.recv(65536)
            c.sendall(b"host got %d bytes\\n" % len(data)); c.close()
            """, path])
        #expect(daemon.line() == "ready")
        let r = try Junction.run(Junction.binary, ["--", "/usr/bin/python3", "-c", """
            import socket, struct, os, sys
            c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
            c.sendall(b"x" * 300000 + b"\\n"); print(c.recv(100).decode().strip())
            pid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            print("peer is another process", pid != os.getpid() and pid > 0)
            print("end of file", c.recv(10))
            """, path])
        #expect(r.stdout == "host got 300001 bytes\npeer is another process True\nend of file b''\n", "\(r)")
        #expect(daemon.finish() == 0)
    }

    @Test("--unix-export: a host program connects to a listener bound inside the instance")
    func exported() throws {
        let (dir, _) = unixScratchPair("export")
        let path = dir + "/server.sock"
        let server = try LineProcess(Junction.binary, ["--unix-export", dir, "--", "/usr/bin/python3", "-c", """
            import socket, sys, os, stat
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            print("ready", stat.S_ISSOCK(os.stat(sys.argv[1]).st_mode), flush=True)
            c, _ = s.accept(); data = b""
            while not data.endswith(b"\\n"): data += c.recv(65536)
            c.sendall(b"instance got %d bytes\\n" % len(data)); c.close()
            print("served", flush=True)
            """, path])
        #expect(server.line() == "ready True")
        let got = hostUnixExchange(path, [UInt8](repeating: 121, count: 500_000) + [10])
        #expect(got?.0 == "instance got 500001 bytes")
        #expect(got?.1 == true)
        #expect(server.line() == "served")
        #expect(server.finish() == 0)
    }

    @Test("without --unix-export the instance's socket file is on the host, but nobody answers there")
    func notExported() throws {
        let (dir, _) = unixScratchPair("private")
        let path = dir + "/private.sock"
        let server = try LineProcess(Junction.binary, ["--", "/usr/bin/python3", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            print("ready", flush=True); s.accept()
            """, path])
        #expect(server.line() == "ready")
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK)
        #expect(hostUnixExchange(path, [1]) == nil)  // ECONNREFUSED: no host socket behind the name
        kill(server.process.processIdentifier, SIGKILL)
        _ = server.finish()
    }
}

private let hasRedis = FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-cli")

@Suite("redis over a unix socket", .serialized, .timeLimit(.minutes(2)), .enabled(if: hasRedis))
struct UnixRedisTests {
    @Test("redis-server --unixsocket under junction (--unix-export): redis-cli -s from the host and from another instance")
    func redis() throws {
        let (dir, _) = unixScratchPair("redis")
        let path = dir + "/redis.sock"
        let server = try LineProcess(Junction.binary, ["--unix-export", dir, "--", "/usr/bin/redis-server", "--unixsocket", path,
                                                       "--port", "0", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        var ready = false
        while let line = server.line() {
            if line.contains("ready to accept connections") { ready = true; break }
        }
        #expect(ready)
        func cli(_ args: [String], underJunction: Bool = false) throws -> String {
            let r = underJunction ? try Junction.run(Junction.binary, ["--", "/usr/bin/redis-cli", "-s", path] + args)
                                  : try Junction.run("/usr/bin/redis-cli", ["-s", path] + args)
            return r.stdout
        }
        #expect(try cli(["ping"]) == "PONG\n")
        #expect(try cli(["set", "key", "from the host"]) == "OK\n")
        #expect(try cli(["get", "key"], underJunction: true) == "from the host\n")
        #expect(try cli(["incr", "n"], underJunction: true) == "1\n")
        #expect(try cli(["incr", "n"]) == "2\n")
        _ = try cli(["shutdown", "nosave"])
        #expect(server.finish() == 0)
        #expect(!FileManager.default.fileExists(atPath: path))  // redis unlinks its socket on the way out
    }
}
