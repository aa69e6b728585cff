// Report.swift: how junction-bench measures and prints: each figure beside its peers
// measured in the same run, with the ratio, as a table or as JSON. A figure measured
// several times is its median, printed with the minimum and maximum over the
// repetitions, so a spread between runs is visible.
import Foundation

/// The repetitions of one measurement: minimum, median and maximum.
struct Spread: Codable, Equatable {
    var min: Double, median: Double, max: Double, runs: Int

    init(_ samples: [Double]) {
        precondition(!samples.isEmpty)
        let s = samples.sorted()
        min = s[0]; median = s[s.count / 2]; max = s[s.count - 1]; runs = s.count
    }

    init(single v: Double) { min = v; median = v; max = v; runs = 1 }

    /// Every figure divided by `d` (nanoseconds to microseconds...).
    func divided(by d: Double) -> Spread {
        var s = self
        s.min /= d; s.median /= d; s.max /= d
        return s
    }
}

/// One measured figure and its peers.
struct BenchResult: Codable {
    var name: String
    var unit: String
    var value: Double
    var peers: [String: Double]
    /// True when a smaller value is better (times); false for rates.
    var lowerIsBetter: Bool = true
    /// Ours over the repetitions (`value` is its median), when repeated.
    var spread: Spread? = nil
    /// The peers' repetitions, by peer name.
    var peerSpreads: [String: Spread]? = nil

    enum CodingKeys: String, CodingKey { case name, unit, value, peers, spread, peerSpreads }

    init(name: String, unit: String, value: Double, peers: [String: Double], lowerIsBetter: Bool = true) {
        self.name = name; self.unit = unit; self.value = value; self.peers = peers; self.lowerIsBetter = lowerIsBetter
    }

    /// A figure measured several times: the medians are compared, the spreads printed.
    init(name: String, unit: String, spread: Spread, peers: [String: Spread], lowerIsBetter: Bool = true) {
        self.init(name: name, unit: unit, value: spread.median, peers: peers.mapValues(\.median), lowerIsBetter: lowerIsBetter)
        self.spread = spread
        self.peerSpreads = peers
    }
}

struct SuiteReport: Codable {
    var suite: String
    var results: [BenchResult]

    func printTable() {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func num(_ v: Double) -> String {
            let s = String(format: "%.1f", v)
            return String(repeating: " ", count: max(0, 12 - s.count)) + s
        }
        func range(_ s: Spread?) -> String {
            guard let s, s.runs > 1 else { return "" }
            return String(format: "   [min %.1f, max %.1f, %d runs]", s.min, s.max, s.runs)
        }
        print("junction-bench \(suite) (medians; [min, max] over the repetitions)")
        for r in results {
            print("  " + pad(r.name, 58) + num(r.value) + " " + r.unit + range(r.spread))
            for (peer, v) in r.peers.sorted(by: { $0.key < $1.key }) {
                let ratio = r.lowerIsBetter ? v / r.value : r.value / v
                let verdict = String(format: "%.2fx %@", ratio >= 1 ? ratio : 1 / ratio, ratio >= 1 ? "faster" : "slower")
                print("    vs " + pad(peer, 54) + num(v) + " " + r.unit + "   ours " + verdict + range(r.peerSpreads?[peer]))
            }
        }
    }

    func printJSON() {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        print(String(decoding: try! enc.encode(self), as: UTF8.self))
    }
}

/// Runs `body(iterations)` `repetitions` times: nanoseconds per iteration, min, median
/// and max over the repetitions. `body` returns the elapsed nanoseconds it measured itself.
func spreadNanos(repetitions: Int = 5, iterations: Int, _ body: (Int) -> Double) -> Spread {
    var samples: [Double] = []
    for _ in 0..<repetitions { samples.append(body(iterations) / Double(iterations)) }
    return Spread(samples)
}

/// Latency samples in nanoseconds cut into `runs` equal runs: the spread of the runs'
/// medians and of their p99s, in microseconds.
func latencySpreads(_ samples: [Double], runs wanted: Int) -> (median: Spread, p99: Spread) {
    let runs = min(wanted, samples.count)
    let per = samples.count / runs
    var medians: [Double] = [], p99s: [Double] = []
    for r in 0..<runs {
        let s = samples[(r * per)..<((r + 1) * per)].sorted()
        medians.append(s[s.count / 2] / 1000)
        p99s.append(s[min(s.count - 1, s.count * 99 / 100)] / 1000)
    }
    return (Spread(medians), Spread(p99s))
}

/// Runs `body` `repetitions` times and returns what each run returned, as a spread.
func repeated(_ repetitions: Int, _ body: () throws -> Double) rethrows -> Spread {
    var samples: [Double] = []
    for _ in 0..<max(1, repetitions) { samples.append(try body()) }
    return Spread(samples)
}

@inline(__always)
func nowNanos() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}
