// ServerTests.swift: unmodified servers under junction fetched from the host: a Node
// `http` server (host sockets, the default) and nginx (`daemon off; master_process off;`,
// its config and logs in a scratch directory) serving a static file to curl (bytes
// checked) on 127.0.0.1 with the host's sockets and over a TAP with --net, and to wrk
// with no socket errors.
import Foundation
import Testing
import TestSupport

private let hasCurl = hasTool("/usr/bin/curl")
private let hasNode = hasTool("/usr/bin/node")
private let hasNginx = hasTool("/usr/sbin/nginx")
private let hasWrk = hasTool("/usr/bin/wrk")

private func fetch(_ args: [String]) throws -> ProcessOutput {
    try runProcess("/usr/bin/curl", ["-sS", "--max-time", "30"] + args)
}

/// A TCP port free on 127.0.0.1 now (the kernel's pick for port 0).
private func freePort() -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
    var n = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, n) } }
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &n) } }
    return Int(UInt16(bigEndian: a.sin_port))
}

/// A scratch directory with nginx's config (listening on `listen`), its logs and
/// www/blob.bin (random bytes).
private struct NginxSite {
    let dir: URL
    let blob: Data
    var config: String { dir.appendingPathComponent("nginx.conf").path }

    init(listen: String) throws {
        dir = Junction.scratch.appendingPathComponent("nginx-\(UInt32.random(in: 0...UInt32.max))")
        let www = dir.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
        blob = Data((0..<200_000).map { _ in UInt8.random(in: 0...255) })
        try blob.write(to: www.appendingPathComponent("blob.bin"))
        try Data("hello from nginx\n".utf8).write(to: www.appendingPathComponent("index.html"))
        let d = dir.path
        let conf = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log info;
            events { worker_connections 512; }
            http {
                access_log \(d)/access.log;
                client_body_temp_path \(d)/body;
                proxy_temp_path \(d)/proxy;
                fastcgi_temp_path \(d)/fastcgi;
                uwsgi_temp_path \(d)/uwsgi;
                scgi_temp_path \(d)/scgi;
                sendfile on;
                tcp_nopush on;
                keepalive_timeout 30;
                server {
                    listen \(listen);
                    root \(d)/www;
                }
            }

            """
        try Data(conf.utf8).write(to: URL(fileURLWithPath: config))
    }

    var command: [String] { ["/usr/sbin/nginx", "-p", dir.path, "-e", dir.appendingPathComponent("error.log").path, "-c", config] }
    var log: String { (try? String(contentsOfFile: dir.appendingPathComponent("error.log").path, encoding: .utf8)) ?? "" }

    /// curl's checks against a server at `base` (http://A:P).
    func check(_ base: String, _ server: ChildProcess) throws {
        let deadline = Date().addingTimeInterval(30)
        var hello = try fetch(["\(base)/"])
        while hello.status != 0 && server.poll() == nil && Date() < deadline {
            usleep(50_000)
            hello = try fetch(["\(base)/"])
        }
        #expect(hello.stdout == "hello from nginx\n", "\(hello)\n\(server.output)\n\(log)")
        let out = dir.appendingPathComponent("fetched.bin").path
        for _ in 0..<3 {
            let r = try fetch(["-o", out, "\(base)/blob.bin"])
            #expect(r.status == 0, "\(r)")
            #expect(FileManager.default.contents(atPath: out) == blob)
        }
        let missing = try fetch(["-o", "/dev/null", "-w", "%{http_code}", "\(base)/nothing"])
        #expect(missing.stdout == "404")
    }

    /// wrk for two seconds: requests made, no socket errors, no non-2xx answers.
    func bench(_ base: String) throws {
        let r = try runProcess("/usr/bin/wrk", ["-t", "1", "-c", "8", "-d", "2s", "--timeout", "10s", "\(base)/"])
        #expect(r.status == 0, "\(r)")
        #expect(!r.stdout.contains("Socket errors") && !r.stdout.contains("Non-2xx"), "\(r.stdout)")
        #expect(r.stdout.contains("requests in"), "\(r.stdout)")
        print("wrk against nginx under junction (\(base)):\n\(r.stdout)")
    }
}

@Suite("servers under junction fetched from the host", .serialized, .timeLimit(.minutes(3)))
struct ServerTests {
    @Test("a Node http server under junction serves curl", .enabled(if: hasNode && hasCurl, "needs nodejs and curl"))
    func nodeHTTP() throws {
        let script = """
            const http = require('http');
            const server = http.createServer((req, res) => {
              const parts = [];
              req.on('data', (c) => parts.push(c));
              req.on('end', () => {
                if (req.url === '/quit') { res.end('bye\\n', () => process.exit(0)); return; }
                if (req.method === 'POST') { res.end(Buffer.concat(parts)); return; }
                res.end('hello from node ' + req.url + '\\n');
              });
            });
            server.listen(0, '127.0.0.1', () => console.log('listening on port ' + server.address().port));
            """
        let server = try ChildProcess([Junction.binary, "--", "/usr/bin/node", "-e", script])
        defer { _ = server.kill() }
        #expect(server.waitForOutput("listening on port ", seconds: 60), "\(server.output)")
        let text = server.output
        let port = text.range(of: "listening on port ").map { Int(text[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
        try #require(port > 0, "\(text)")
        let base = "http://127.0.0.1:\(port)"
        #expect(try fetch(["\(base)/hello"]).stdout == "hello from node /hello\n")
        let body = String((0..<100_000).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! })
        let bodyFile = Junction.scratch.appendingPathComponent("node-body-\(UInt32.random(in: 0...UInt32.max))")
        try Data(body.utf8).write(to: bodyFile)
        defer { try? FileManager.default.removeItem(at: bodyFile) }
        #expect(try fetch(["--data-binary", "@" + bodyFile.path, "\(base)/echo"]).stdout == body)
        #expect(try fetch(["\(base)/quit"]).stdout == "bye\n")
        #expect(server.wait(seconds: 30) == 0, "\(server.output)")
    }

    @Test("nginx under junction (host sockets) serves curl and wrk on 127.0.0.1",
          .enabled(if: hasNginx && hasCurl && hasWrk, "needs nginx-light, curl and wrk"))
    func nginxOnHostSockets() throws {
        let port = freePort()
        let site = try NginxSite(listen: "127.0.0.1:\(port)")
        defer { try? FileManager.default.removeItem(at: site.dir) }
        let server = try ChildProcess([Junction.binary, "--"] + site.command)
        defer { _ = server.stop() }
        try site.check("http://127.0.0.1:\(port)", server)
        try site.bench("http://127.0.0.1:\(port)")
        #expect(server.poll() == nil, "nginx died: \(server.output)\n\(site.log)")
    }

    @Test("nginx under junction --net tap serves curl and wrk over the TAP",
          .enabled(if: runningAsRoot && hasNginx && hasCurl && hasWrk, "needs root, nginx-light, curl and wrk"))
    func nginxOnNetStack() throws {
        let site = try NginxSite(listen: "0.0.0.0:8080")
        defer { try? FileManager.default.removeItem(at: site.dir) }
        let tap = try JunctionOnTap(site.command)
        defer { _ = tap.finish() }
        #expect(tap.waitForTap(), "junction did not set up the TAP: \(tap.process.output)")
        try site.check("http://\(tap.instance):8080", tap.process)
        try site.bench("http://\(tap.instance):8080")
        #expect(tap.process.poll() == nil, "nginx died: \(tap.process.output)\n\(site.log)")
    }
}
