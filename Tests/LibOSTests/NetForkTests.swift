// NetStack sockets after fork on a tap: device (ForkRule.swift, TapSteering.swift). With
// steering (the default): a pre-forking server whose parent also accepts answers every
// connection from all three processes, the parent's established connection keeps
// working, the workers' copies of it are unconnected (ENOTCONN, EPIPE), and a worker's
// own connection reaches the host; a server whose parent never accepts (nginx's master)
// is answered by both workers, an idle connection keeps reaching its worker, and the
// workers' outgoing connections work. Without it (JUNCTION_NET_FORK_QUEUES=0) the device
// stays the parent's: a worker's new connection off the instance is ENETUNREACH, and the
// worker logs once why.
import Foundation
import Testing
import TestSupport

@Suite("NetStack sockets after fork (junction --net tap)", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: runningAsRoot, "needs root: creates TAP interfaces and routes"))
struct NetForkTests {
    @Test(arguments: [true, false])
    func preForkedWorkersAllAcceptAndTheParentKeepsItsConnection(steered: Bool) throws {
        let prog = try Junction.compile("net_prefork", [], as: "net_prefork")
        let (name, subnet) = JunctionOnTap.allocate()
        let tap = try JunctionOnTap([prog, "8093", "\(subnet).1"], allocated: (name, subnet),
                                    environment: steered ? [] : ["JUNCTION_NET_FORK_QUEUES=0"])
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
        let processes = lines.first { $0.hasPrefix("processes ") }.flatMap { Int($0.dropFirst(10)) } ?? 0
        if steered {
            // Every process accepts (the parent polls the listener, the workers accept):
            // 40 connections by a hash of their 4-tuples reach all three (all in two or
            // fewer: 3 * (2/3)^40, about 3e-7).
            #expect(processes == 3, "\(r.stdout)")
        } else {
            // The device's connections all reach the parent (the workers listen on their
            // own loopback).
            #expect(processes >= 1)
        }
        print("net_prefork (steered \(steered)): \(processes) of 3 processes accepted connections")
        #expect(tap.process.wait(seconds: 30) == 0, "\(tap.process.output)")
        let out = tap.process.output
        #expect(out.components(separatedBy: "worker: inherited connection recv ENOTCONN send EPIPE\n").count == 3, "\(out)")
        if steered {
            // Port 9 of the host's side of the TAP: nothing listens, the host resets.
            #expect(out.components(separatedBy: "worker: new connection ECONNREFUSED\n").count == 3, "\(out)")
            #expect(!out.contains("has no --net device"), "\(out)")
        } else {
            #expect(out.components(separatedBy: "worker: new connection ENETUNREACH\n").count == 3, "\(out)")
            #expect(out.components(separatedBy: "has no --net device: tap:\(name) stays with the parent").count == 3, "\(out)")
        }
        #expect(out.contains("parent: 2 workers stopped\n"), "\(out)")
    }

    /// nginx's shape: the parent only waits, two workers accept. 40 connections from the
    /// host are all answered, by both workers; a connection idle for 4.5 s (beyond the
    /// TAP's own flow steering's 3 s freshness, after which it would re-steer by hash)
    /// still reaches its worker; each worker's own connection to the host works.
    @Test func workersAcceptWhenTheParentNeverDoes() throws {
        let prog = try Junction.compile("net_prefork_master", [], as: "net_prefork_master")
        let tap = try JunctionOnTap([prog, "8094"])
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        #expect(tap.process.waitForOutput("parent: ready\n", seconds: 60), "\(tap.process.output)")
        let client = """
        import socket, sys, time
        host, instance, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        def ask(s, line):
            s.sendall(line.encode())
            data = b''
            while not data.endswith(b'\\n'):
                d = s.recv(100)
                if not d: raise OSError('closed after ' + repr(data))
                data += d
            return data.decode()
        def request(line):
            s = socket.create_connection((instance, port), timeout=20)
            try: return ask(s, line)
            finally: s.close()
        answers = [request('hello\\n') for i in range(40)]
        good = [a for a in answers if a.startswith('pid ') and a[4:-1].isdigit()]
        print('answered', len(good))
        print('workers', len(set(good)))
        s = socket.create_connection((instance, port), timeout=20)
        first = ask(s, 'hello\\n')
        time.sleep(4.5)   # the subject of the test: an idle flow (not synchronization)
        second = ask(s, 'hello\\n')
        s.close()
        print('idle connection', 'same worker' if first == second and first in good else repr((first, second)))
        l = socket.socket()
        l.bind((host, 0))
        l.listen(8)
        l.settimeout(20)
        callers = set()
        for i in range(60):
            s = socket.create_connection((instance, port), timeout=20)
            s.sendall(b'call %d\\n' % l.getsockname()[1])
            c, _ = l.accept()
            c.settimeout(20)
            said = c.makefile('rb').readline().decode()
            c.close()
            reply = s.makefile('rb').readline().decode()
            s.close()
            if reply == 'called\\n' and said in good: callers.add(said)
            if len(callers) == 2: break
        print('outgoing from', len(callers), 'workers')
        print(request('quit\\n'), end='')
        """
        let r = try runProcess("/usr/bin/python3", ["-c", client, tap.host, tap.instance, "8094"])
        #expect(r.status == 0, "client: \(r.stderr)\njunction: \(tap.process.output)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("answered 40"), "\(r.stdout)\njunction: \(tap.process.output)")
        // Both workers (all 40 on one: 2 * 2^-40).
        #expect(lines.contains("workers 2"), "\(r.stdout)\njunction: \(tap.process.output)")
        #expect(lines.contains("idle connection same worker"), "\(r.stdout)")
        // Each worker connected to the host (60 tries to reach both: 2^-59 to miss one).
        #expect(lines.contains("outgoing from 2 workers"), "\(r.stdout)\njunction: \(tap.process.output)")
        #expect(lines.last == "bye", "\(r.stdout)")
        #expect(tap.process.wait(seconds: 30) == 0, "\(tap.process.output)")
        let out = tap.process.output
        #expect(out.contains("parent: 2 workers stopped\n"), "\(out)")
        #expect(!out.contains("has no --net device"), "\(out)")
    }
}
