// CongestionControl.swift: what every congestion-control algorithm provides (the window
// growth and the reaction to loss), and the enum that holds the configured one without an
// existential. Loss detection and recovery (dupACKs, NewReno partial ACKs, SACK) are the
// connection's; the algorithm only sizes cwnd and ssthresh.

protocol CongestionControl {
    /// Congestion window and slow-start threshold, bytes.
    var congestionWindow: Int { get set }
    var slowStartThreshold: Int { get set }
    /// Congestion avoidance on an ACK of `bytes` new bytes outside recovery.
    mutating func congestionAvoidance(acked bytes: Int, mss: Int, now: Int64, smoothedRTT: Int64?)
    /// A loss detected by duplicate ACKs or SACK (entering fast recovery): sets ssthresh
    /// and the window recovery starts from.
    mutating func enterRecovery(flightSize: Int, mss: Int, now: Int64)
    /// A retransmission timeout: ssthresh from the flight, cwnd to the loss window (RFC 5681 §3.1).
    mutating func timeout(flightSize: Int, mss: Int, now: Int64)
    /// Restart after idle (RFC 5681 §4.1).
    mutating func restart(window: Int, now: Int64)
}

extension CongestionControl {
    /// RFC 5681 §3.1 slow start with RFC 3465's limit L = 1 SMSS per ACK, else congestion
    /// avoidance.
    mutating func onACK(acked bytes: Int, mss: Int, now: Int64, smoothedRTT: Int64?) {
        if congestionWindow < slowStartThreshold {
            // A plain get and set: `+=` goes through the requirement's modify coroutine,
            // whose frame an unspecialized (debug) build allocates.
            congestionWindow = congestionWindow + min(bytes, mss)
        } else {
            congestionAvoidance(acked: bytes, mss: mss, now: now, smoothedRTT: smoothedRTT)
        }
    }
}

/// The configured algorithm, by value.
enum CongestionController {
    case newReno(NewReno)
    case cubic(Cubic)

    init(_ algorithm: CongestionControlAlgorithm, initialWindow: Int) {
        switch algorithm {
        case .newReno: self = .newReno(NewReno(initialWindow: initialWindow))
        case .cubic: self = .cubic(Cubic(initialWindow: initialWindow))
        }
    }

    var algorithm: CongestionControlAlgorithm {
        switch self { case .newReno: .newReno; case .cubic: .cubic }
    }

    var congestionWindow: Int {
        get { switch self { case .newReno(let a): a.congestionWindow; case .cubic(let a): a.congestionWindow } }
        set {
            switch self {
            case .newReno(var a): a.congestionWindow = newValue; self = .newReno(a)
            case .cubic(var a): a.congestionWindow = newValue; self = .cubic(a)
            }
        }
    }

    var slowStartThreshold: Int {
        switch self { case .newReno(let a): a.slowStartThreshold; case .cubic(let a): a.slowStartThreshold }
    }

    mutating func onACK(acked: Int, mss: Int, now: Int64, smoothedRTT: Int64?) {
        switch self {
        case .newReno(var a): a.onACK(acked: acked, mss: mss, now: now, smoothedRTT: smoothedRTT); self = .newReno(a)
        case .cubic(var a): a.onACK(acked: acked, mss: mss, now: now, smoothedRTT: smoothedRTT); self = .cubic(a)
        }
    }

    mutating func enterRecovery(flightSize: Int, mss: Int, now: Int64) {
        switch self {
        case .newReno(var a): a.enterRecovery(flightSize: flightSize, mss: mss, now: now); self = .newReno(a)
        case .cubic(var a): a.enterRecovery(flightSize: flightSize, mss: mss, now: now); self = .cubic(a)
        }
    }

    mutating func timeout(flightSize: Int, mss: Int, now: Int64) {
        switch self {
        case .newReno(var a): a.timeout(flightSize: flightSize, mss: mss, now: now); self = .newReno(a)
        case .cubic(var a): a.timeout(flightSize: flightSize, mss: mss, now: now); self = .cubic(a)
        }
    }

    mutating func restart(window: Int, now: Int64) {
        switch self {
        case .newReno(var a): a.restart(window: window, now: now); self = .newReno(a)
        case .cubic(var a): a.restart(window: window, now: now); self = .cubic(a)
        }
    }
}
