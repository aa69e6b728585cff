// TCPTapInteropTests.swift: NetStack's TCP against Linux's over TAP interfaces the tests
// create (unique names and 10.x.y.0/24 subnets, removed afterwards): curl fetches from
// http-hello, a python3 client streams through echo-server --tcp (SHA-256 both ways),
// our client streams through a python3 echo server, a closed port answers RST.
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing
import TestSupport
import UThreads

/// An example server (`echo-server`, `http-hello`) on a fresh TAP interface, the kernel's
/// side at .1, ours at .2; stopped (and the interface removed) by `finish()` or deinit.
final class ServerOnTap {
    let name: String
    let octet: UInt8
    let process: ChildProcess
    var ours: String { "10.216.\(octet).2" }
    var kernels: String { "10.216.\(octet).1" }

    init(_ executable: String, _ arguments: [String], ready: String) throws {
        name = uniqueTestName("jntc")
        octet = testSubnetOctet()
        process = try ChildProcess([siblingExecutable(executable), "--net", "tap:\(name)",
                                    "--ip", "10.216.\(octet).2/24", "--host-ip", "10.216.\(octet).1/24"] + arguments)
        guard process.waitForOutput(ready, seconds: 10) else {
            let out = process.output
            process.kill()
            _ = try? runCommand("ip", "link", "del", name)
            throw InterfaceTestFailure("\(executable) did not start: \(out)")
        }
    }

    @discardableResult
    func finish() -> String {
        process.stop()
        _ = try? runCommand("ip", "link", "del", name)
        return process.output
    }

    deinit { finish() }
}

/// Bytes streamed each way by the bulk tests: 100 MB (about 5 s each in a debug build);
/// 1 GB with JUNCTION_LONG_TESTS=1.
let bulkBytes = longTests ? 1_000_000_000 : 100_000_000

/// The stream our client sends: a block of pattern bytes whose length (a prime) does not
/// divide any buffer size, so a slipped, lost or repeated piece shows.
let streamPeriod = 1_000_003
let streamBlock = pattern(streamPeriod, seed: 3)

@Suite(.enabled(if: runningAsRoot, "needs root: creates TAP interfaces"), .serialized)
struct TCPTapInteropTests {
    @Test func curlFetchesFromHTTPHello() throws {
        let server = try ServerOnTap("http-hello", ["--port", "80"], ready: "http-hello: ready")
        let url = "http://\(server.ours)/"
        let one = try runChild(["curl", "-sS", "--max-time", "10", url], seconds: 15)
        #expect(one.status == 0 && one.output == "Hello from Junction NetStack\n", "\(one.output)")
        // Two requests on one connection (keep-alive), verbose to see the reuse.
        let two = try runChild(["curl", "-sS", "-v", "--max-time", "10", url, url], seconds: 15)
        #expect(two.output.components(separatedBy: "Hello from Junction NetStack").count == 3, "\(two.output)")
        #expect(two.output.contains("Re-using existing connection") || two.output.contains("Reusing existing connection"), "\(two.output)")
        #expect(two.output.contains("Content-Length: 29"), "\(two.output)")
        // Connection: close is honoured: the server closes after the response.
        let close = try runChild(["curl", "-sS", "-v", "--max-time", "10", "-H", "Connection: close", url], seconds: 15)
        #expect(close.output.contains("< Connection: close") && close.output.contains("Hello from Junction NetStack"), "\(close.output)")
        let missing = try runChild(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url + "nothing"], seconds: 15)
        #expect(missing.output == "404", "\(missing.output)")
        let out = server.finish()
        #expect(summaryValue(out, "requests") == 5, "\(out)")
        #expect(summaryValue(out, "tcp.rst") == 0, "\(out)")
    }

    /// A python3 client streams `bulkBytes` to echo-server --tcp while reading the echo;
    /// the SHA-256 of what it sent and what came back must match.
    @Test func linuxClientStreamsThroughOurEchoServer() throws {
        let server = try ServerOnTap("echo-server", ["--tcp", "7"], ready: "echo-server: ready")
        let script = """
        import hashlib, random, socket, sys, threading, time
        size = int(sys.argv[2])
        s = socket.create_connection((sys.argv[1], 7), timeout=30)
        sent = hashlib.sha256()
        def send():
            r = random.Random(1)
            left = size
            while left > 0:
                chunk = r.randbytes(min(left, 1 << 20))
                sent.update(chunk)
                s.sendall(chunk)
                left -= len(chunk)
        start = time.time()
        t = threading.Thread(target=send)
        t.start()
        got = hashlib.sha256()
        n = 0
        while n < size:
            d = s.recv(1 << 20)
            if not d: break
            got.update(d)
            n += len(d)
        t.join()
        s.shutdown(socket.SHUT_WR)
        eof = s.recv(10) == b""
        took = time.time() - start
        print("received", n, "match" if sent.digest() == got.digest() else "DIFFER", "eof" if eof else "no-eof", "%.2f s" % took)
        """
        let start = Date()
        let r = try runChild(["python3", "-c", script, server.ours, "\(bulkBytes)"], seconds: 120)
        let took = Date().timeIntervalSince(start)
        let out = server.finish()
        print("Linux client -> echo-server --tcp over TAP: \(bulkBytes) bytes each way in \(String(format: "%.1f", took)) s: \(r.output)")
        #expect(r.output.contains("received \(bulkBytes) match eof"), "\(r.output)\n\(out)")
        #expect(summaryValue(out, "tcp.echoed") == bulkBytes, "\(out)")
        #expect(summaryValue(out, "tcp.connections") == 1, "\(out)")
    }

    @Test func linuxConnectingToAClosedPortIsRefused() throws {
        let server = try ServerOnTap("echo-server", ["--tcp", "7"], ready: "echo-server: ready")
        let script = """
        import socket, sys
        try:
            socket.create_connection((sys.argv[1], 9), timeout=5)
            print("connected")
        except ConnectionRefusedError:
            print("refused")
        except socket.timeout:
            print("timeout")
        """
        let r = try runChild(["python3", "-c", script, server.ours], seconds: 15)
        let out = server.finish()
        #expect(r.output.contains("refused"), "\(r.output)")
        #expect(summaryValue(out, "tcp.rst") == 1, "\(out)")
    }

    /// Our client (this process, a TAP device) streams `bulkBytes` through a python3 echo
    /// server on the kernel's side, checking every byte that comes back; the server
    /// reports the SHA-256 of what it received, which must be our stream's. With the TAP's
    /// offloads, segments larger than the MTU go both ways (the kernel cuts ours, and
    /// hands us its own unsegmented) and checksums are partial.
    @Test(arguments: [true, false])
    func ourClientStreamsThroughALinuxEchoServer(offloads: Bool) throws {
        let name = uniqueTestName("jntl")
        let octet = testSubnetOctet()
        var tapConfiguration = TapConfiguration()
        tapConfiguration.offloads = offloads
        let tap = try TapDevice(name: name, configuration: tapConfiguration)
        defer { _ = try? runCommand("ip", "link", "del", name) }
        // Nothing for the subnet leaves by another route while the test runs.
        try runCommand("ip", "route", "add", "blackhole", "10.217.\(octet).0/24", "metric", "4000")
        defer { _ = try? runCommand("ip", "route", "del", "blackhole", "10.217.\(octet).0/24", "metric", "4000") }
        _ = try? runCommand("sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1")
        try runCommand("ip", "addr", "add", "10.217.\(octet).1/24", "dev", name)
        try runCommand("ip", "link", "set", name, "up")
        let script = """
        import hashlib, socket, sys
        l = socket.socket()
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((sys.argv[1], 7008))
        l.listen(1)
        print("listening", flush=True)
        l.settimeout(30)
        c, a = l.accept()
        c.settimeout(30)
        h = hashlib.sha256()
        n = 0
        while True:
            d = c.recv(1 << 20)
            if not d: break
            h.update(d)
            n += len(d)
            c.sendall(d)
        c.close()
        print("server got", n, h.hexdigest(), flush=True)
        """
        let linux = try ChildProcess(["python3", "-u", "-c", script, "10.217.\(octet).1"])
        defer { linux.kill() }
        #expect(linux.waitForOutput("listening", seconds: 10), "\(linux.output)")
        let config = InterfaceConfiguration(mac: MAC(tap.info.mac), address: try IPv4CIDR(parsing: "10.217.\(octet).2/24"))
        let link = SharedDevice(tap)
        let interface = try NetworkInterface(link: link, configuration: config)
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        let size = bulkBytes
        let result = runtime.spawn { () -> (String?, Bool, Double) in
            let start = MonotonicInstant.now
            let c: TCPSocket
            do { c = try TCPSocket.connect(interface: interface, to: SocketAddress(IPv4Address(10, 217, octet, 1), 7008)) } catch {
                return ("connect: \(error)", false, 0)
            }
            c.receiveTimeout = .seconds(20)
            let writer = UThread.spawn { () -> String? in
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                var offset = 0
                while offset < size {
                    let n = min(chunk.count, size - offset)
                    for k in 0..<n { chunk[k] = streamBlock[(offset + k) % streamPeriod] }
                    if let e = writePrefix(c, chunk, n) { return "write: \(e)" }
                    offset += n
                }
                do throws(SocketError) { try c.shutdown(.write) } catch { return "shutdown: \(error)" }
                return nil
            }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var got = 0
            var intact = true
            var failure: String? = nil
            while true {
                let n: Int
                do throws(SocketError) { n = try c.read(into: &buffer) } catch { failure = "read at \(got): \(error)"; break }
                if n == 0 { break }
                var p = got % streamPeriod
                for k in 0..<n {
                    if buffer[k] != streamBlock[p] { intact = false; break }
                    p += 1
                    if p == streamPeriod { p = 0 }
                }
                got += n
            }
            if let e = writer.join(), failure == nil { failure = e }
            c.close()
            if got != size && failure == nil { failure = "got \(got) of \(size)" }
            return (failure, intact, Double(MonotonicInstant.now.nanoseconds - start.nanoseconds) / 1e9)
        }.join()
        #expect(result.0 == nil, "\(result.0 ?? "")")
        #expect(result.1)
        print("our client -> Linux echo server over TAP: \(size) bytes each way in \(String(format: "%.1f", result.2)) s")
        #expect(linux.waitForOutput("server got \(size)", seconds: 10), "\(linux.output)")
        // The server's digest of what it received is the digest of our stream.
        let digest = try runChild(["python3", "-c", """
            import hashlib, sys
            size, period = int(sys.argv[1]), int(sys.argv[2])
            block = bytes(((o * 2654435761 + 3) >> 13) & 0xFF for o in range(period))
            h = hashlib.sha256()
            for base in range(0, size - size % period, period):
                h.update(block)
            h.update(block[:size % period])
            print(h.hexdigest())
            """, "\(size)", "\(streamPeriod)"], seconds: 120)
        #expect(linux.output.contains(digest.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(linux.output) vs \(digest.output)")
        #expect(interface.statistics.wire.total == 0, "\(interface.statistics.wire)")
        let device = link.device.statistics
        #expect(device.rxMalformed == 0 && device.rxChecksumErrors == 0, "\(device)")
        if offloads {
            #expect(device.txSegmented > 0, "\(device)")
            #expect(device.rxCoalesced > 0, "\(device)")
        } else {
            #expect(device.txSegmented == 0 && device.rxCoalesced == 0, "\(device)")
        }
    }
}
