// BenchAppsTests.swift: `junction-bench apps` starts, explains itself, and a short native
// memcached case produces its figures as JSON (no figure is judged: timings are the
// benchmark's business, not a test's).
import Foundation
import TestSupport
import Testing

private let bench = siblingExecutable("junction-bench")

@Suite("junction-bench apps", .timeLimit(.minutes(2)),
       .enabled(if: hasTool(bench), "junction-bench is not built next to the tests (swift build)"))
struct BenchAppsTests {
    @Test func helpNamesTheOptionsAndTheTools() throws {
        let r = try runProcess(bench, ["apps", "--help"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("--seconds"))
        #expect(r.stdout.contains("--ways"))
        #expect(r.stdout.contains("redis-tools"))
    }

    @Test func anUnknownAppOrWayIsAClearError() throws {
        let app = try runProcess(bench, ["apps", "--apps", "redis,postgres"])
        #expect(app.status != 0)
        #expect(app.stderr.contains("unknown app 'postgres'"), "\(app)")
        let way = try runProcess(bench, ["apps", "--ways", "rdma"])
        #expect(way.status != 0)
        #expect(way.stderr.contains("unknown way 'rdma'"), "\(way)")
    }

    @Test(.enabled(if: hasTool("/usr/bin/memcached") && hasTool("/usr/bin/gcc") && hasTool("/usr/bin/taskset"),
                   "needs memcached, gcc and taskset (scripts/deps.sh installs them)"))
    func aShortNativeMemcachedRunReportsItsFigures() throws {
        let r = try runProcess(bench, ["apps", "--apps", "memcached", "--ways", "native", "--seconds", "2", "--json"])
        #expect(r.status == 0, "\(r)")
        struct Report: Decodable {
            struct Result: Decodable { var name: String; var unit: String; var value: Double }
            var suite: String
            var results: [Result]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        #expect(report.suite == "apps")
        let throughput = report.results.first { $0.name.hasPrefix("memcached") && $0.name.contains("throughput") }
        #expect(throughput?.unit == "req/s", "\(r)")
        #expect((throughput?.value ?? 0) > 0, "\(r)")
    }
}
