// NetStack sockets after fork on a tap: device (ForkRule.swift): the device stays the
// parent's; a pre-forking server whose parent also accepts answers every connection, the
// parent's established connection keeps working, the workers' copies of it are
// unconnected (ENOTCONN, EPIPE), a new connection off the instance in a worker is
// ENETUNREACH, and the worker logs once why.
import Foundation
import Testing
import TestSupport

@Suite("NetStack sockets after fork (junction --net tap)", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: runningAsRoot, "needs root: creates TAP interfaces and routes"))
struct NetForkTests {
    @Test func preForkedWorkersAllAcceptAndTheParentKeepsItsConnection() throws {
        let prog = try Junction.compile("net_prefork", [], as: "net_prefork")
        let (name, subnet) = JunctionOnTap.allocate()
        let tap = try JunctionOnTap([prog, "8093", "\(subnet).1"], allocated: (name, subnet))
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        // The control connection is the program's first accept: the client retries it
        // until the server listens (no probe connection, it would become the control).
        let client = """
        import socket, sys, time
        host, port = sys.argv[1], int(sys.argv[2])
        deadline = time.monotonic() + 20
        while True:
            try:
                c = socket.create_connection((host, port), timeout=2); break
            except OSError:
                if time.monotonic() > deadline: raise
                time.sleep(0.05)
        c.settimeout(20)
        f = c.makefile('rb')
        assert f.readline() == b'ready\\n'
        answers = []
        for i in range(40):
            s = socket.create_connection((host, port), timeout=20)
            data = b''
            while True:
                d = s.recv(100)
                if not d: break
                data += d
            s.close()
            answers.append(data.decode())
        c.sendall(b'hello after fork\\n')
        print(f.readline().decode(), end='')
        good = [a for a in answers if a.startswith('pid ') and a.endswith('\\n') and a[4:-1].isdigit()]
        print('answered', len(good))
        print('processes', len(set(good)))
        c.close()
        """
        let r = try runProcess("/usr/bin/python3", ["-c", client, tap.instance, "8093"])
        #expect(r.status == 0, "client: \(r.stderr)\njunction: \(tap.process.output)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first == "parent: hello after fork", "\(r.stdout)")
        #expect(lines.contains("answered 40"), "\(r.stdout)\njunction: \(tap.process.output)")
        // The device's connections all reach the parent (the workers listen on their own
        // loopback): at least one process answered.
        let processes = lines.first { $0.hasPrefix("processes ") }.flatMap { Int($0.dropFirst(10)) } ?? 0
        #expect(processes >= 1)
        print("net_prefork: \(processes) of 3 processes accepted connections")
        #expect(tap.process.wait(seconds: 30) == 0, "\(tap.process.output)")
        let out = tap.process.output
        #expect(out.components(separatedBy: "worker: inherited connection recv ENOTCONN send EPIPE\n").count == 3, "\(out)")
        #expect(out.components(separatedBy: "worker: new connection ENETUNREACH\n").count == 3, "\(out)")
        #expect(out.components(separatedBy: "has no --net device: tap:\(name) stays with the parent").count == 3, "\(out)")
        #expect(out.contains("parent: 2 workers stopped\n"), "\(out)")
    }
}
