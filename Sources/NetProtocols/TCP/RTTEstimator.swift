// RTTEstimator.swift: round-trip time estimation and the retransmission timeout (RFC 6298),
// with exponential backoff that holds until a new valid sample (Karn's algorithm).

struct RTTEstimator {
    /// RFC 6298's G: the clock granularity. RTT samples come from the 1 ms timestamp
    /// clock or from `now`, so 1 ms.
    static let granularity: Int64 = 1_000_000

    private(set) var smoothed: Int64?
    private(set) var variance: Int64 = 0
    let minimum: Int64, maximum: Int64
    /// RTO before backoff.
    private(set) var baseRTO: Int64
    /// Doublings since the last valid sample (RFC 6298 §5.5).
    private(set) var backoffShift = 0

    init(initial: Int64, minimum: Int64, maximum: Int64) {
        self.minimum = minimum
        self.maximum = maximum
        baseRTO = min(max(initial, minimum), maximum)
    }

    /// The timeout to arm now.
    var rto: Int64 {
        let shifted = backoffShift >= 30 ? maximum : baseRTO << Int64(backoffShift)
        return min(shifted, maximum)
    }

    /// RFC 6298 §2.2–2.3 (α = 1/8, β = 1/4), then §2.4–2.5 bounds. A sample also ends the
    /// backoff.
    mutating func sample(_ r: Int64) {
        let r = max(r, 0)
        if let s = smoothed {
            variance = (3 * variance + abs(s - r)) / 4
            smoothed = (7 * s + r) / 8
        } else {
            smoothed = r
            variance = r / 2
        }
        baseRTO = min(max(smoothed! + max(Self.granularity, 4 * variance), minimum), maximum)
        backoffShift = 0
    }

    /// RFC 6298 §5.7: a handshake that needed a retransmission and gave no sample starts
    /// data transfer with an RTO of at least `value` (3 s).
    mutating func fallBack(to value: Int64) {
        guard smoothed == nil else { return }
        baseRTO = min(max(baseRTO, value), maximum)
        backoffShift = 0
    }

    /// RFC 6298 §5.5: RTO ← RTO × 2 (up to the maximum).
    mutating func backOff() {
        if rto < maximum { backoffShift += 1 }
    }
}
