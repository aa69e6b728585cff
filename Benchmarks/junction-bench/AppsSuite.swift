// AppsSuite.swift: `junction-bench apps`: unmodified redis (redis-benchmark), memcached
// (Benchmarks/Programs/memload.c) and nginx (wrk): both ends under junction over a `shm:`
// link beside both ends native over Linux loopback, in the same run: requests/s, p50,
// p99, and CPU seconds of server and client per million requests; plus the server under
// junction over a TAP with a native client, as a smoke figure. Servers run on the second
// allowed CPU, clients on the first (taskset), each junction instance on one kthread.
import ArgumentParser
import Foundation
import Glibc

struct AppsSuite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "Unmodified redis, memcached and nginx: both ends under junction over shm versus both ends native on Linux loopback.",
        discussion: """
            Needs redis-server and redis-tools, memcached and gcc, nginx-light and wrk (a case whose \
            tools are missing is skipped with a line saying what to install), and junction built \
            next to junction-bench (swift build -c release --product junction). The TAP smoke \
            case needs root. Each case is cut off at 20 s; every process, TAP and route it made \
            is removed, also on Ctrl-C.
            """)
    @OptionGroup var options: SuiteOptions

    @Option(help: "Seconds of load per case (times --scale); a case is cut off at 20 s in all.")
    var seconds: Double = 5
    @Option(help: "Apps to run, comma-separated: redis, memcached, nginx.")
    var apps: String = "redis,memcached,nginx"
    @Option(help: "Ways to run them, comma-separated: native (both ends on Linux loopback), shm (both ends under junction over a shm link), tap (the server under junction over a TAP, a native client; root).")
    var ways: String = "native,shm,tap"
    @Flag(help: "Print each command, and where its output went, to stderr.")
    var verbose = false
    @Flag(help: "Keep the scratch directory (configs, every process's output) and print its path.")
    var keep = false

    /// Every case, start to finish, ends within this many seconds.
    static let caseBound = 20.0
    /// Addresses inside the shm link (no host route sees them).
    static let shmServer = "10.98.0.2", shmClient = "10.98.0.1"
    static let nativePeer = "Linux: both ends native over loopback"
    static let tapPeer = "junction server over TAP, native client (smoke)"

    func validate() throws {
        for a in apps.split(separator: ",") where !["redis", "memcached", "nginx"].contains(a) {
            throw ValidationError("unknown app '\(a)'; expected a comma-separated list of redis, memcached, nginx")
        }
        for w in ways.split(separator: ",") where AppWay(rawValue: String(w)) == nil {
            throw ValidationError("unknown way '\(w)'; expected a comma-separated list of native, shm, tap")
        }
        guard seconds > 0, seconds * options.scale <= Self.caseBound / 2 else {
            throw ValidationError("--seconds times --scale must be above 0 and at most \(Int(Self.caseBound / 2)) (a case is cut off at \(Int(Self.caseBound)) s)")
        }
    }

    func run() throws {
        installInterruptHandlers()
        do { try measureAll() } catch is Interrupted {
            FileHandle.standardError.write(Data("apps: interrupted; its processes, TAPs and routes are removed\n".utf8))
            throw ExitCode(130)
        }
    }

    func measureAll() throws {
        let o = options
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junction-bench-apps-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            if keep { note("scratch directory kept: \(dir)") } else { try? FileManager.default.removeItem(atPath: dir) }
        }
        let wanted = Set(ways.split(separator: ",").map { String($0) })
        let wantedApps = Set(apps.split(separator: ",").map { String($0) })
        var env = try AppsEnvironment(dir: dir, verbose: verbose)
        var runWays: [AppWay] = AppWay.allCases.filter { wanted.contains($0.rawValue) }
        if runWays.contains(where: { $0 != .native }) && env.junction == nil {
            note("skipping the shm and tap cases: junction is not built next to junction-bench (swift build -c release --product junction)")
            runWays.removeAll { $0 != .native }
        }
        if runWays.contains(.tap), let why = AppsEnvironment.tapUnavailable() {
            note("skipping the tap smoke cases: \(why)")
            runWays.removeAll { $0 == .tap }
        }
        let load = o.scale * seconds
        var results: [BenchResult] = []
        for app in AppCase.all(seconds: load) where wantedApps.contains(app.app) && o.wants(app.name) {
            if let missing = app.missing() { note("skipping \(app.name): \(missing)"); continue }
            try app.prepare(&env)
            var figures: [AppWay: AppFigures] = [:]
            for way in runWays {
                do {
                    figures[way] = try env.measure(app, way: way, load: load, nativeRate: figures[.native]?.rps)
                } catch let e as BenchFailure {
                    note("\(app.name), \(way.title): failed: \(e)")
                }
                try checkInterrupted()
            }
            results += app.results(figures)
        }
        o.emit(SuiteReport(suite: "apps", results: results))
    }
}

/// A line on stderr (stdout keeps the table or the JSON).
func note(_ s: String) { FileHandle.standardError.write(Data("apps: \(s)\n".utf8)) }

enum AppWay: String, CaseIterable {
    case native, shm, tap
    var title: String {
        switch self {
        case .native: return "both ends native over loopback"
        case .shm: return "both ends under junction over shm"
        case .tap: return "server under junction over TAP"
        }
    }
}

/// What one client run measured.
struct AppFigures {
    var rps: Double
    var p50: Double?          // µs
    var p99: Double?          // µs
    var requests: Double
    var serverCPU: Double?    // seconds, over the client's run
    var clientCPU: Double?    // seconds, from the first request to exit
}

/// One benchmark: a server, the client that loads it, and how to read the client's output.
struct AppCase {
    let app: String
    let name: String
    /// Tools and the Debian package that has each.
    let tools: [(name: String, package: String)]
    /// The server's port inside an instance (native servers take a free port).
    let port: UInt16
    /// The server's command (tool paths resolved): listening on `address`:`port`.
    let server: (_ env: AppsEnvironment, _ address: String, _ port: UInt16) -> [String]
    /// What the probe sends once connected (e.g. a preload), with \r\n escapes.
    let probeRequest: String?
    /// The client's command; `requests` is set when `countBased`.
    let client: (_ env: AppsEnvironment, _ host: String, _ port: UInt16, _ requests: Int) -> [String]
    /// The client runs a number of requests (redis-benchmark -n), not for a time: a short
    /// pilot run sets the count from its rate.
    let countBased: Bool
    let pilotRequests: Int
    let parse: (_ output: String) -> AppFigures?

    func missing() -> String? {
        let absent = tools.filter { findTool($0.name) == nil }
        guard !absent.isEmpty else { return nil }
        let packages = Array(Set(absent.map(\.package))).sorted()
        return "\(absent.map(\.name).joined(separator: ", ")) not found; install with: apt-get install \(packages.joined(separator: " ")) (scripts/deps.sh does)"
    }

    /// Builds what the case needs in the scratch directory (C programs, config, files).
    func prepare(_ env: inout AppsEnvironment) throws {
        try env.compile("probe")
        switch app {
        case "memcached": try env.compile("memload")
        case "nginx": try env.nginxSite()
        default: break
        }
    }

    func results(_ f: [AppWay: AppFigures]) -> [BenchResult] {
        var out: [BenchResult] = []
        func row(_ what: String, _ unit: String, lowerIsBetter: Bool, tap: Bool, _ get: (AppFigures) -> Double?) {
            var peers: [String: Double] = [:]
            if let n = f[.native].flatMap(get) { peers[AppsSuite.nativePeer] = n }
            if tap, let t = f[.tap].flatMap(get) { peers[AppsSuite.tapPeer] = t }
            if let ours = f[.shm].flatMap(get) {
                out.append(BenchResult(name: "\(name): \(what), junction both ends over shm", unit: unit, value: ours, peers: peers, lowerIsBetter: lowerIsBetter))
            } else if let n = peers.removeValue(forKey: AppsSuite.nativePeer) {
                out.append(BenchResult(name: "\(name): \(what), native over loopback (no shm figure)", unit: unit, value: n, peers: peers, lowerIsBetter: lowerIsBetter))
            } else if let t = peers.removeValue(forKey: AppsSuite.tapPeer) {
                out.append(BenchResult(name: "\(name): \(what), junction server over TAP only", unit: unit, value: t, peers: [:], lowerIsBetter: lowerIsBetter))
            }
        }
        row("throughput", "req/s", lowerIsBetter: false, tap: true) { $0.rps }
        row("latency p50", "µs", lowerIsBetter: true, tap: true) { $0.p50 }
        row("latency p99", "µs", lowerIsBetter: true, tap: true) { $0.p99 }
        row("server CPU per million requests", "CPU s", lowerIsBetter: true, tap: true) { g in g.serverCPU.map { $0 / g.requests * 1e6 } }
        row("client CPU per million requests", "CPU s", lowerIsBetter: true, tap: false) { g in g.clientCPU.map { $0 / g.requests * 1e6 } }
        return out
    }

    static func all(seconds: Double) -> [AppCase] {
        // The probe and memload are built at run time; taskset pins each side.
        let common = [(name: "gcc", package: "gcc"), (name: "taskset", package: "util-linux")]
        func redis(_ test: String, pipeline: Int) -> AppCase {
            AppCase(app: "redis", name: "redis \(test) 50 conns" + (pipeline > 1 ? " -P \(pipeline)" : ""),
                    tools: [("redis-server", "redis-server"), ("redis-benchmark", "redis-tools")] + common, port: 6379,
                    server: { env, address, port in
                        [env.path("redis-server"), "--port", "\(port)", "--bind", address, "--save", "", "--appendonly", "no",
                         "--protected-mode", "no", "--io-threads", "1", "--dir", env.dir]
                    },
                    probeRequest: "SET key:__rand_int__ xxx\\r\\n",   // the key redis-benchmark's GET reads (without -r)
                    client: { env, host, port, n in
                        [env.path("redis-benchmark"), "-h", host, "-p", "\(port)", "-c", "50", "-n", "\(n)", "-t", test.lowercased()]
                            + (pipeline > 1 ? ["-P", "\(pipeline)"] : [])
                    },
                    countBased: true, pilotRequests: pipeline > 1 ? 20_000 : 2000,
                    parse: parseRedisBenchmark)
        }
        let memcached = AppCase(
            app: "memcached", name: "memcached 90% get 50 conns",
            tools: [("memcached", "memcached")] + common, port: 11211,
            server: { env, address, port in
                [env.path("memcached")] + (geteuid() == 0 ? ["-u", "root"] : []) + ["-l", address, "-p", "\(port)", "-U", "0", "-t", "1", "-c", "1024"]
            },
            probeRequest: "version\\r\\n",
            client: { env, host, port, _ in
                [env.dir + "/memload", host, "\(port)", "50", String(format: "%.1f", seconds), "10000", "64", "90"]
            },
            countBased: false, pilotRequests: 0, parse: parseMemload)
        let nginx = AppCase(
            app: "nginx", name: "nginx 1 KiB file 64 conns",
            tools: [("nginx", "nginx-light"), ("wrk", "wrk")] + common, port: 80,
            server: { env, address, port in
                [env.path("nginx"), "-p", env.dir + "/nginx", "-e", env.dir + "/nginx/error.log", "-c", env.nginxConfig(listen: "\(address):\(port)")]
            },
            probeRequest: nil,
            client: { env, host, port, _ in
                [env.path("wrk"), "-t", "1", "-c", "64", "-d", "\(max(1, Int(seconds.rounded())))s", "--latency", "http://\(host):\(port)/1k.bin"]
            },
            countBased: false, pilotRequests: 0, parse: parseWrk)
        return [redis("GET", pipeline: 1), redis("SET", pipeline: 1), redis("GET", pipeline: 16), redis("SET", pipeline: 16), memcached, nginx]
    }
}

// MARK: Reading the clients' output

/// redis-benchmark's summary: "throughput summary: R requests per second" and, under
/// "avg min p50 p95 p99 max", the latencies in ms. (Not --csv: that mode prints no
/// progress line, the only figure of a run cut off at the bound.)
func parseRedisBenchmark(_ text: String) -> AppFigures? {
    let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
    guard let t = lines.first(where: { $0.contains("throughput summary:") }),
          let rps = Double(t.split(separator: " ").dropFirst(2).first ?? ""),
          let header = lines.lastIndex(where: { $0.split(separator: " ").starts(with: ["avg", "min", "p50"]) }),
          header + 1 < lines.count else { return nil }
    let ms = lines[header + 1].split(separator: " ").compactMap { Double($0) }
    guard ms.count >= 5 else { return nil }
    return AppFigures(rps: rps, p50: ms[2] * 1000, p99: ms[4] * 1000, requests: 0)
}

/// The last "overall: R)" rate of redis-benchmark's progress line.
func redisProgressRate(_ text: String) -> Double? {
    guard let r = text.range(of: "(overall: ", options: .backwards) else { return nil }
    return Double(text[r.upperBound...].prefix { $0 != ")" })
}

/// The last instantaneous "rps=R" of redis-benchmark's progress line.
func redisInstantRate(_ text: String) -> Double? {
    guard let r = text.range(of: "rps=", options: .backwards) else { return nil }
    return Double(text[r.upperBound...].prefix { $0 != " " })
}

/// memload: "requests N seconds S rps R p50_us X p99_us Y".
func parseMemload(_ text: String) -> AppFigures? {
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("requests ") }) else { return nil }
    let w = line.split(separator: " ")
    guard w.count >= 10, let n = Double(w[1]), let rps = Double(w[5]), let p50 = Double(w[7]), let p99 = Double(w[9]) else { return nil }
    return AppFigures(rps: rps, p50: p50, p99: p99, requests: n)
}

/// wrk --latency: "Requests/sec: R", "N requests in", and the 50% and 99% lines.
func parseWrk(_ text: String) -> AppFigures? {
    func duration(_ s: Substring) -> Double? {
        for (suffix, scale) in [("us", 1.0), ("ms", 1000.0), ("s", 1e6), ("m", 6e7)] where s.hasSuffix(suffix) {
            return Double(s.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
    var rps: Double?, n: Double?, p50: Double?, p99: Double?
    for line in text.split(separator: "\n") {
        let w = line.split(separator: " ")
        if w.first == "Requests/sec:", w.count > 1 { rps = Double(w[1]) }
        if w.count > 2, w[1] == "requests", w[2] == "in" { n = Double(w[0]) }
        if w.count == 2, w[0] == "50%" { p50 = duration(w[1]) }
        if w.count == 2, w[0] == "99%" { p99 = duration(w[1]) }
    }
    guard let rps, let n else { return nil }
    return AppFigures(rps: rps, p50: p50, p99: p99, requests: n)
}
