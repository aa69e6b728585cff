// SocketTests.swift: sockets under junction with the host-kernel backend (no --net):
// the socket calls and what servers wait on, differentially (C programs natively and
// under junction), and real servers (python3 -m http.server, asyncio, Go net/http) on
// 127.0.0.1 with kernel-chosen ports, fetched by curl from outside the instance.
import Foundation
import TestSupport
import Testing

private let hasCurl = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
private let hasPython = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
private let hasGo = FileManager.default.isExecutableFile(atPath: "/usr/bin/go")
private let hasJava = FileManager.default.isExecutableFile(atPath: "/usr/bin/java")

/// A server under junction whose first output names its port.
private func startServer(_ command: [String], portAfter marker: String) throws -> (ChildProcess, Int) {
    let child = try ChildProcess([Junction.binary, "--"] + command)
    guard child.waitForOutput(marker, seconds: 30) else {
        child.kill()
        throw CommandFailure("no '\(marker)' from \(command): \(child.output)")
    }
    let text = child.output
    let after = text.range(of: marker).map { text[$0.upperBound...] } ?? ""
    guard let port = Int(after.prefix { $0.isNumber }) else {
        child.kill()
        throw CommandFailure("no port in: \(text)")
    }
    return (child, port)
}

private func curl(_ args: [String]) throws -> ProcessOutput {
    try runProcess("/usr/bin/curl", ["-sS", "--max-time", "30"] + args)
}

@Suite("sockets under junction (host-kernel backend)", .serialized, .timeLimit(.minutes(3)))
struct SocketTests {
    @Test("socket calls: errors, names, options, ioctls, streams, datagrams, cmsgs, mmsg, IPv6, netlink, epoll, select",
          arguments: [("static", ["-static", "-pthread"]), ("dynamic", ["-pthread"])])
    func socketCalls(_ variant: String, _ flags: [String]) throws {
        let prog = try Junction.compile("sockets", flags, as: "sockets-\(variant)")
        try Junction.same(prog, [])
        // One kthread: every wait is a parked uthread woken by the reactor's poll hook.
        let native = try Junction.run(prog, [])
        let one = try Junction.run(Junction.binary, ["--kthreads", "1", "--", prog])
        #expect(one == native)
    }

    @Test("edge-triggered epoll on a loopback TCP pair: data's arrival is an edge that reports IN and OUT, EPOLL_CTL_MOD re-arms (CPython's test_control_and_wait)",
          arguments: [["--kthreads", "1"], ["--kthreads", "2"]])
    func epollEdges(_ options: [String]) throws {
        let prog = try Junction.compile("epoll_edges", [], as: "epoll_edges")
        let native = try Junction.run(prog, [])
        let ours = try Junction.run(Junction.binary, options + ["--", prog])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("epoll's ready list: level-triggered stays while ready, edge once per change, oneshot, maxevents 1 goes round every ready socket, close ends a registration (NetStack and host sockets)",
          arguments: [["--net", "loopback", "--ip", "10.9.0.2/24", "--kthreads", "1"], ["--net", "loopback", "--ip", "10.9.0.2/24", "--kthreads", "2"],
                      ["--kthreads", "1"]])
    func epollReadyList(_ options: [String]) throws {
        let prog = try Junction.compile("epoll_levels", ["-pthread"], as: "epoll_levels")
        let native = try Junction.run(prog, [])
        let ours = try Junction.run(Junction.binary, options + ["--", prog])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("interface ioctls on any family: if_nametoindex and if_nameindex (glibc asks on AF_UNIX)", .enabled(if: hasPython))
    func interfaceQueriesOnUnixSockets() throws {
        let script = """
        import socket, fcntl, struct
        print(socket.if_nametoindex('lo'), socket.if_nameindex()[0])
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        r = fcntl.ioctl(u, 0x8921, struct.pack('256s', b'lo'))   # SIOCGIFMTU
        print('mtu', struct.unpack('i', r[16:20])[0])
        try: fcntl.ioctl(u, 0x8915, struct.pack('256s', b'lo'))   # SIOCGIFADDR: inet sockets only
        except OSError as e: print('SIOCGIFADDR on AF_UNIX', e)
        try: socket.if_nametoindex('nosuch0')
        except OSError as e: print('nosuch0', e)
        """
        try Junction.same("/usr/bin/python3", ["-c", script])
    }

    @Test("timerfd, signalfd, select and pselect6", arguments: [("static", ["-static"]), ("dynamic", [])])
    func events(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("events", flags, as: "events-\(variant)"), [])
    }

    @Test("python3 asyncio: a TCP echo server and eight clients, UDP endpoints, getaddrinfo, IPV6_V6ONLY",
          .enabled(if: hasPython))
    func asyncioEcho() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("asyncio_echo.py").path])
    }

    @Test("python3 -m http.server under junction serves curl from the host", .enabled(if: hasPython && hasCurl))
    func httpServer() throws {
        let dir = Junction.scratch.appendingPathComponent("http-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = Data((0..<300_000).map { _ in UInt8.random(in: 0...255) })
        try bytes.write(to: dir.appendingPathComponent("blob.bin"))
        try Data("hello over the host's sockets\n".utf8).write(to: dir.appendingPathComponent("hello.txt"))
        let (server, port) = try startServer(["/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                                              "--directory", dir.path], portAfter: " port ")
        defer { server.kill() }
        let hello = try curl(["http://127.0.0.1:\(port)/hello.txt"])
        #expect(hello.stdout == "hello over the host's sockets\n", "\(hello)\n\(server.output)")
        let out = dir.appendingPathComponent("fetched.bin").path
        for _ in 0..<3 {
            let r = try curl(["-o", out, "http://127.0.0.1:\(port)/blob.bin"])
            #expect(r.status == 0, "\(r)")
            #expect(FileManager.default.contents(atPath: out) == bytes)
        }
        // curl itself under junction (getaddrinfo of localhost, a client on host sockets).
        let inside = try runProcess(Junction.binary, ["--", "/usr/bin/curl", "-sS", "--max-time", "30", "http://localhost:\(port)/hello.txt"],
                                    environment: Junction.environment)
        #expect(inside.stdout == "hello over the host's sockets\n", "\(inside)")
        let missing = try curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/nothing"])
        #expect(missing.stdout == "404")
        #expect(server.poll() == nil, "the server died: \(server.output)")
    }

    @Test("a Go net/http server under junction serves curl from the host", .enabled(if: hasGo && hasCurl))
    func goHTTP() throws {
        let source = testProgramsDirectory.appendingPathComponent("gohttp").path
        let binary = Junction.scratch.appendingPathComponent("gohttp").path
        let cache = Junction.scratch.appendingPathComponent("gocache").path
        if !FileManager.default.fileExists(atPath: binary) {
            let built = try runProcess("/usr/bin/go", ["build", "-o", binary, "."],
                                       environment: ["PATH": "/usr/bin:/bin", "HOME": Junction.scratch.path, "GOCACHE": cache,
                                                     "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"],
                                       currentDirectory: source)
            try #require(built.status == 0, "go build failed (scripts/deps.sh installs golang-go): \(built)")
        }
        let (server, port) = try startServer([binary], portAfter: "PORT ")
        defer { server.kill() }
        let base = "http://127.0.0.1:\(port)"
        #expect(try curl(["\(base)/hello?name=junction"]).stdout == "hello from go, junction\n")
        let body = String(repeating: "0123456789abcdef", count: 20_000)
        let bodyFile = Junction.scratch.appendingPathComponent("gohttp-body-\(getpid())")
        try Data(body.utf8).write(to: bodyFile)
        defer { try? FileManager.default.removeItem(at: bodyFile) }
        #expect(try curl(["--data-binary", "@" + bodyFile.path, "\(base)/echo"]).stdout == body)
        #expect(try curl(["\(base)/quit"]).stdout == "bye\n")
        #expect(server.wait(seconds: 20) == 0, "\(server.output)")
        #expect(server.output.hasSuffix("served\n"), "\(server.output)")
    }

    @Test("java -version, and a com.sun.net.httpserver server under junction serving curl", .enabled(if: hasJava && hasCurl))
    func java() throws {
        // The JVM asks pthread_getattr_np about its threads (sched_getaffinity of their tids).
        let version = try runProcess(Junction.binary, ["--", "/usr/bin/java", "-version"], environment: Junction.environment)
        #expect(version.status == 0, "\(version)")
        #expect(version.stderr.contains("OpenJDK"), "\(version)")
        let source = testProgramsDirectory.appendingPathComponent("java/Hello.java").path
        let (server, port) = try startServer(["/usr/bin/java", source], portAfter: "PORT ")
        defer { server.kill() }
        let base = "http://127.0.0.1:\(port)"
        #expect(try curl(["\(base)/hello?junction"]).stdout == "hello from java junction\n")
        #expect(try curl(["\(base)/quit"]).stdout == "bye\n")
        #expect(server.wait(seconds: 30) == 0, "\(server.output)")
        #expect(server.output.hasSuffix("served\n"), "\(server.output)")
    }
}
