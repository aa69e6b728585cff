// Cubic.swift: CUBIC (RFC 9438): the window follows W_cubic(t) = C(t − K)³ + W_max after a
// loss, never below the Reno-friendly estimate W_est (§4.3), with β = 0.7 and fast
// convergence (§4.7). Windows here are in segments, as the RFC writes them.
import Glibc

struct Cubic: CongestionControl {
    /// RFC 9438 §5: C = 0.4, β_cubic = 0.7.
    static let c = 0.4
    static let beta = 0.7
    /// §4.3: α_cubic = 3(1 − β)/(1 + β), the Reno-friendly growth per RTT.
    static let alpha = 3 * (1 - beta) / (1 + beta)

    var congestionWindow: Int
    var slowStartThreshold = Int.max
    /// W_max: the window (segments) just before the last reduction.
    private(set) var wMax = 0.0
    /// Start of the current congestion-avoidance epoch (nil: starts at the next ACK).
    private(set) var epochStart: Int64?
    /// K: seconds the cubic takes to climb back to W_max (RFC 9438 eq. 2).
    private(set) var k = 0.0
    /// W_est: the Reno-friendly estimate (segments).
    private(set) var wEst = 0.0
    /// cwnd at the start of the epoch (segments).
    private(set) var cwndEpoch = 0.0
    /// Fractional bytes of growth not yet added to cwnd.
    private var pending = 0.0

    init(initialWindow: Int) { congestionWindow = initialWindow }

    /// W_cubic(t) (segments), t seconds into the epoch (RFC 9438 eq. 1).
    func window(at t: Double) -> Double { Self.c * (t - k) * (t - k) * (t - k) + wMax }

    mutating func congestionAvoidance(acked bytes: Int, mss: Int, now: Int64, smoothedRTT: Int64?) {
        let m = Double(mss)
        let cwnd = Double(congestionWindow) / m
        if epochStart == nil {
            epochStart = now
            cwndEpoch = cwnd
            if cwnd < wMax {
                k = cbrt((wMax - cwnd) / Self.c)
            } else {
                k = 0
                wMax = cwnd
            }
            wEst = cwnd
        }
        let t = Double(now - epochStart!) / 1e9
        let rtt = Double(smoothedRTT ?? 100_000_000) / 1e9
        let segments = Double(bytes) / m
        // §4.3: W_est grows by α_cubic per RTT until it reaches W_max, then by 1 (Reno).
        let alpha = wEst < wMax ? Self.alpha : 1.0
        wEst += alpha * segments / cwnd
        let wCubic = window(at: t)
        var increase: Double
        if wCubic < wEst {
            // §4.3 Reno-friendly region.
            increase = (wEst - cwnd) * m
        } else {
            // §4.4–4.5: aim for W_cubic one RTT ahead, between cwnd and 1.5 × cwnd.
            let target = min(max(window(at: t + rtt), cwnd), 1.5 * cwnd)
            increase = (target - cwnd) / cwnd * segments * m
        }
        pending += max(increase, 0)
        if pending >= 1 {
            let whole = Int(pending)
            congestionWindow += whole
            pending -= Double(whole)
        }
    }

    /// §4.6 multiplicative decrease with §4.7 fast convergence.
    mutating func enterRecovery(flightSize: Int, mss: Int, now: Int64) {
        reduce(mss: mss)
        congestionWindow = slowStartThreshold
    }

    /// §4.8: a timeout reduces like a loss, then restarts from one segment.
    mutating func timeout(flightSize: Int, mss: Int, now: Int64) {
        reduce(mss: mss)
        congestionWindow = mss
    }

    mutating func restart(window: Int, now: Int64) {
        congestionWindow = min(congestionWindow, window)
        epochStart = nil
        pending = 0
    }

    private mutating func reduce(mss: Int) {
        let cwnd = Double(congestionWindow) / Double(mss)
        wMax = cwnd < wMax ? cwnd * (1 + Self.beta) / 2 : cwnd
        slowStartThreshold = max(Int((Double(congestionWindow) * Self.beta).rounded()), 2 * mss)
        epochStart = nil
        pending = 0
    }
}
