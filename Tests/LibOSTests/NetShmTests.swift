// NetShmTests.swift: a client under junction talking to a server under junction over a
// `shm:` link, both sides' sockets on NetStack and no kernel network in between:
// redis-server against redis-cli (results checked) and redis-benchmark. The link is a
// file in /dev/shm and an abstract unix socket, not a host interface: no TAP, no routes,
// nothing can leave the machine. The first instance to open the path creates the file
// and waits for the second; a link joins exactly two instances, so each client gets a
// fresh server and path.
import Foundation
import Synchronization
import Testing
import TestSupport

private let shmCounter = Atomic(0)

/// redis-server under `junction --net shm:PATH` at SUBNET.1; `client` runs programs under
/// junction on the other end of the same link, at SUBNET.2.
final class RedisOnShm {
    let path: String
    let subnet: String
    let server: ChildProcess
    var serverIP: String { "\(subnet).1" }

    init() throws {
        let n = shmCounter.add(1, ordering: .relaxed).newValue
        path = "/dev/shm/junction-test-shm-\(getpid())-\(n)"
        subnet = "10.215.\((Int(getpid()) &* 7 &+ n) % 200 + 30)"
        server = try ChildProcess([siblingExecutable("junction"), "--net", "shm:\(path)", "--ip", "\(subnet).1/24", "--",
                                   "/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", "--save", "",
                                   "--appendonly", "no", "--protected-mode", "no", "--io-threads", "1"])
    }

    /// Runs `program` under junction on the link's other end, after a python3 probe (in
    /// the same instance, which then execs `program`) has seen the server answer PING:
    /// the server starts only once both ends have met, so the client must wait for it.
    func client(_ program: [String], stdin: String? = nil) throws -> ProcessOutput {
        let probe = """
        import os, socket, sys, time
        for _ in range(1200):
            try:
                s = socket.create_connection((sys.argv[1], 6379), timeout=5)
                s.sendall(b'PING\\r\\n')
                if s.recv(64).startswith(b'+PONG'):
                    s.close()
                    break
                s.close()
            except OSError:
                pass
            time.sleep(0.05)
        else:
            sys.exit('redis-server did not answer over the shm link')
        os.execv(sys.argv[2], sys.argv[2:])
        """
        return try runProcess(siblingExecutable("junction"),
                              ["--net", "shm:\(path)", "--ip", "\(subnet).2/24", "--", "/usr/bin/python3", "-c", probe, serverIP] + program,
                              stdin: stdin)
    }

    func finish() -> String {
        _ = server.stop()
        unlink(path)   // the creator removes it when it exits normally
        return server.output
    }

    deinit { _ = finish() }
}

@Suite("servers under junction --net shm", .serialized, .timeLimit(.minutes(3)))
struct NetShmTests {
    static let haveRedis = hasTool("/usr/bin/redis-server") && hasTool("/usr/bin/redis-cli")
        && hasTool("/usr/bin/redis-benchmark") && hasTool("/usr/bin/python3")

    @Test(.enabled(if: haveRedis, "needs redis-server, redis-tools and python3"))
    func redisCliAgainstRedisServer() throws {
        let link = try RedisOnShm()
        defer { _ = link.finish() }
        let big = String(repeating: "x", count: 50_000)
        let r = try link.client(["/usr/bin/redis-cli", "-h", link.serverIP, "-p", "6379"],
                                stdin: "SET greeting hello-over-shm\nGET greeting\nINCR counter\nINCRBY counter 41\n"
                                    + "RPUSH list a b c\nLRANGE list 0 -1\nSET big \(big)\nSTRLEN big\n")
        #expect(r.status == 0, "client: \(r.stderr)\nserver: \(link.server.output)")
        #expect(r.stdout.split(separator: "\n") == ["OK", "hello-over-shm", "1", "42", "3", "a", "b", "c", "OK", "50000"],
                "\(r.stdout)\n\(r.stderr)")
    }

    @Test(.enabled(if: haveRedis, "needs redis-server, redis-tools and python3"))
    func redisBenchmarkAgainstRedisServer() throws {
        let link = try RedisOnShm()
        defer { _ = link.finish() }
        let r = try link.client(["/usr/bin/redis-benchmark", "-h", link.serverIP, "-p", "6379", "-n", "2000", "-c", "10",
                                 "-t", "set,get", "-q"])
        #expect(r.status == 0, "client: \(r.stderr)\nserver: \(link.server.output)")
        let lines = r.stdout.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).filter { $0.contains("requests per second") }
        #expect(lines.contains { $0.hasPrefix("SET:") } && lines.contains { $0.hasPrefix("GET:") }, "redis-benchmark: \(r.stdout)\n\(r.stderr)")
        #expect(!r.stdout.lowercased().contains("error") && !r.stderr.lowercased().contains("error"), "\(r.stdout)\n\(r.stderr)")
        print("redis-benchmark over shm, both ends under junction: \(lines.joined(separator: "; "))")
    }
}
