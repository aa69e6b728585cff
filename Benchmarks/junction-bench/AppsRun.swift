// AppsRun.swift: one case of `junction-bench apps`, start to end: the server (native,
// under junction on a shm link, or under junction on a TAP), a probe that waits for it and
// then execs the load generator (under junction too over shm), CPU seconds of both sides
// over the load, the 20 s bound, and the teardown.
import Foundation
import Glibc
import Synchronization

struct AppsEnvironment {
    static let links = Atomic<Int>(0)
    let dir: String
    let verbose: Bool
    /// junction, built next to this binary, or nil.
    let junction: String?
    let serverCPU: Int, clientCPU: Int
    private var compiled: Set<String> = []
    private var tools: [String: String] = [:]

    init(dir: String, verbose: Bool) throws {
        self.dir = dir
        self.verbose = verbose
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let j = exe.deletingLastPathComponent().appendingPathComponent("junction").path
        junction = FileManager.default.isExecutableFile(atPath: j) ? j : nil
        let cpus = allowedCPUs()
        clientCPU = cpus[0]
        serverCPU = cpus.count > 1 ? cpus[1] : cpus[0]
        if cpus.count < 2 { note("only one CPU is allowed: server and client share CPU \(cpus[0])") }
        for t in ["redis-server", "redis-benchmark", "memcached", "nginx", "wrk", "gcc", "taskset", "ip"] { tools[t] = findTool(t) }
    }

    /// The absolute path of a tool `AppCase.missing` found.
    func path(_ tool: String) -> String { tools[tool] ?? tool }

    /// Why the TAP cases cannot run here, or nil.
    static func tapUnavailable() -> String? {
        if geteuid() != 0 { return "they need root (a TAP device and a route)" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "/dev/net/tun is not available" }
        if findTool("ip") == nil { return "ip not found; install with: apt-get install iproute2" }
        return nil
    }

    /// Builds Benchmarks/Programs/NAME.c into the scratch directory (once).
    mutating func compile(_ name: String) throws {
        guard !compiled.contains(name) else { return }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Programs/\(name).c").path
        let r = try runTool([path("gcc"), "-O2", "-o", "\(dir)/\(name)", source], dir: dir, seconds: 60)
        guard r.status == 0 else { throw BenchFailure("gcc could not build \(source)") }
        compiled.insert(name)
    }

    /// nginx's prefix: www/1k.bin (1024 bytes) and the directories its config names.
    mutating func nginxSite() throws {
        guard !compiled.contains("nginx") else { return }
        for sub in ["www", "body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/nginx/\(sub)", withIntermediateDirectories: true)
        }
        try Data(repeating: 0x61, count: 1024).write(to: URL(fileURLWithPath: "\(dir)/nginx/www/1k.bin"))
        compiled.insert("nginx")
    }

    /// Writes nginx's config for `listen` (one process, no access log) and returns its path.
    func nginxConfig(listen: String) -> String {
        let d = dir + "/nginx"
        let conf = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(d)/body;
                proxy_temp_path \(d)/proxy;
                fastcgi_temp_path \(d)/fastcgi;
                uwsgi_temp_path \(d)/uwsgi;
                scgi_temp_path \(d)/scgi;
                sendfile on;
                tcp_nopush on;
                keepalive_timeout 60;
                keepalive_requests 1000000;
                server {
                    listen \(listen);
                    root \(d)/www;
                }
            }

            """
        let path = "\(d)/nginx-\(listen.replacingOccurrences(of: ":", with: "-")).conf"
        try? Data(conf.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func start(_ argv: [String], label: String) throws -> AppProcess {
        let p = try AppProcess(argv, label: label, dir: dir)
        if verbose { note("[\(p.pid)] \(argv.joined(separator: " "))  (output: \(p.outPath), \(p.errPath))") }
        return p
    }

    /// One case one way: a fresh server, then the client (after a pilot run that sets a
    /// count-based client's request count, except over shm, where a link pairs two
    /// processes once: there the native rate sets it).
    func measure(_ app: AppCase, way: AppWay, load: Double, nativeRate: Double?) throws -> AppFigures {
        guard FileManager.default.isExecutableFile(atPath: "\(dir)/probe") else { throw BenchFailure("the probe was not built") }
        let deadline = nowSeconds() + AppsSuite.caseBound
        let n = Self.links.add(1, ordering: .relaxed).newValue
        let tag = "\(app.app)-\(way.rawValue)-\(n)"
        let shmPath = "/dev/shm/junction-bench-apps-\(getpid())-\(n)"
        defer { unlink(shmPath) }
        var tap: TapLink?
        if way == .tap { tap = try TapLink(dir: dir) }
        defer { tap?.remove() }
        let port = try way == .native ? freeLoopbackPort() : app.port
        let host: String
        var serverCommand = [path("taskset"), "-c", "\(serverCPU)"]
        var clientCommand = [path("taskset"), "-c", "\(clientCPU)"]
        switch way {
        case .native:
            host = "127.0.0.1"
            serverCommand += app.server(self, host, port)
        case .shm:
            host = AppsSuite.shmServer
            serverCommand += [junction!, "--kthreads", "1", "--net", "shm:\(shmPath)", "--ip", "\(host)/24", "--"] + app.server(self, "0.0.0.0", port)
            clientCommand += [junction!, "--kthreads", "1", "--net", "shm:\(shmPath)", "--ip", "\(AppsSuite.shmClient)/24", "--"]
        case .tap:
            host = tap!.instance
            serverCommand += [junction!, "--kthreads", "1", "--net", "tap:\(tap!.name)", "--ip", "\(host)/24", "--host-ip", "\(tap!.host)/24", "--"]
                + app.server(self, "0.0.0.0", port)
        }
        let server = try start(serverCommand, label: tag + "-server")
        defer { server.stop() }
        if let tap { try tap.waitForHostAddress(server: server, until: deadline) }

        func client(_ requests: Int, _ label: String, until: Double) throws -> AppFigures {
            let probe = ["\(dir)/probe", host, "\(port)", "10"] + (app.probeRequest.map { [$0] } ?? []) + ["--"]
            let c = try start(clientCommand + probe + app.client(self, host, port, requests), label: label)
            defer { c.stop(grace: 0.5) }
            var before: (server: Double, client: Double)?
            var loadStart = 0.0
            while before == nil {
                try checkInterrupted()
                if c.output.contains("probe: connected") {
                    loadStart = nowSeconds()
                    before = (server.cpuSeconds ?? 0, c.cpuSeconds ?? 0)
                } else if c.poll() != nil {
                    throw BenchFailure("the client \(c.statusText) before reaching the server: \(c.errors.suffix(400)) | server: \(server.errors.suffix(400))")
                } else if server.poll() != nil {
                    throw BenchFailure("the server \(server.statusText): \(server.errors.suffix(600))")
                } else if nowSeconds() >= until {
                    throw BenchFailure("no answer from the server within the bound | server: \(server.errors.suffix(400)) | client: \(c.errors.suffix(400))")
                } else {
                    usleep(2000)
                }
            }
            let exited = try c.wait(until: until)
            let serverAfter = server.cpuSeconds
            let elapsed = nowSeconds() - loadStart
            var f: AppFigures
            if exited, c.status == 0, let parsed = app.parse(c.output) {
                f = parsed
                if f.requests == 0 { f.requests = Double(requests) }
                f.clientCPU = c.reapedCPUSeconds.map { $0 - before!.client }
            } else if !exited, app.countBased, let rate = redisProgressRate(c.output), rate > 0 {
                let hung = redisInstantRate(c.output) == 0 ? " (its last progress line says rps=0.0: the run had stopped, this is no steady rate)" : ""
                note("\(app.name), \(way.title): cut off at \(Int(AppsSuite.caseBound)) s; the rate is redis-benchmark's last progress line's overall rate, no percentiles\(hung)")
                f = AppFigures(rps: rate, p50: nil, p99: nil, requests: rate * elapsed)
                f.clientCPU = c.cpuSeconds.map { $0 - before!.client }
            } else {
                c.stop(grace: 0.5)
                throw BenchFailure("the client \(exited ? c.statusText : "was cut off at the bound") without figures: \(c.output.suffix(300)) \(c.errors.suffix(400)) | server: \(server.errors.suffix(400))")
            }
            f.serverCPU = serverAfter.map { $0 - before!.server }
            // /proc counts in clock ticks (10 ms): below two of them a figure is noise.
            let tick = 1 / Double(sysconf(Int32(_SC_CLK_TCK)))
            if let s = f.serverCPU, s < 2 * tick { f.serverCPU = nil }
            if let c = f.clientCPU, c < 2 * tick { f.clientCPU = nil }
            return f
        }

        var requests = 0
        if app.countBased {
            if way == .shm {
                requests = max(1000, Int((nativeRate ?? Double(app.pilotRequests) * 2) * load))
            } else {
                let pilot = try client(app.pilotRequests, tag + "-pilot", until: min(deadline, nowSeconds() + AppsSuite.caseBound / 3))
                // Half the time left at most: the rate of a loaded machine drifts, and a run
                // cut off at the bound has no percentiles.
                let seconds = min(load, (deadline - nowSeconds() - 2) / 2)
                requests = max(1000, Int(pilot.rps * seconds))
            }
        }
        return try client(requests, tag + "-client", until: deadline)
    }
}
