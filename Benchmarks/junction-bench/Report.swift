// Report.swift: how junction-bench measures and prints: each figure beside its peers
// measured in the same run, with the ratio, as a table or as JSON.
import Foundation

/// One measured figure and its peers.
struct BenchResult: Codable {
    var name: String
    var unit: String
    var value: Double
    var peers: [String: Double]
    /// True when a smaller value is better (times); false for rates.
    var lowerIsBetter: Bool = true

    enum CodingKeys: String, CodingKey { case name, unit, value, peers }
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
        print("junction-bench \(suite)")
        for r in results {
            print("  " + pad(r.name, 58) + num(r.value) + " " + r.unit)
            for (peer, v) in r.peers.sorted(by: { $0.key < $1.key }) {
                let ratio = r.lowerIsBetter ? v / r.value : r.value / v
                let verdict = String(format: "%.2fx %@", ratio >= 1 ? ratio : 1 / ratio, ratio >= 1 ? "faster" : "slower")
                print("    vs " + pad(peer, 54) + num(v) + " " + r.unit + "   ours " + verdict)
            }
        }
    }

    func printJSON() {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        print(String(decoding: try! enc.encode(self), as: UTF8.self))
    }
}

/// Runs `body(iterations)` `repetitions` times and returns the median nanoseconds per
/// iteration. `body` returns the elapsed nanoseconds it measured itself.
func medianNanos(repetitions: Int = 5, iterations: Int, _ body: (Int) -> Double) -> Double {
    var samples: [Double] = []
    for _ in 0..<repetitions { samples.append(body(iterations) / Double(iterations)) }
    samples.sort()
    return samples[samples.count / 2]
}

@inline(__always)
func nowNanos() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}
