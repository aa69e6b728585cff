// NewReno.swift: RFC 5681 window growth (slow start, congestion avoidance by appropriate
// byte counting) and halving on loss; RFC 6582's recovery lives in the connection.

struct NewReno: CongestionControl {
    var congestionWindow: Int
    var slowStartThreshold = Int.max
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 §3.1, RFC 3465).
    private var bytesAcked = 0

    init(initialWindow: Int) { congestionWindow = initialWindow }

    mutating func congestionAvoidance(acked bytes: Int, mss: Int, now: Int64, smoothedRTT: Int64?) {
        bytesAcked += bytes
        if bytesAcked >= congestionWindow {
            bytesAcked -= congestionWindow
            congestionWindow += mss
        }
    }

    /// RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2 × SMSS).
    mutating func enterRecovery(flightSize: Int, mss: Int, now: Int64) {
        slowStartThreshold = max(flightSize / 2, 2 * mss)
        congestionWindow = slowStartThreshold
        bytesAcked = 0
    }

    mutating func timeout(flightSize: Int, mss: Int, now: Int64) {
        slowStartThreshold = max(flightSize / 2, 2 * mss)
        congestionWindow = mss
        bytesAcked = 0
    }

    mutating func restart(window: Int, now: Int64) {
        congestionWindow = min(congestionWindow, window)
        bytesAcked = 0
    }
}
