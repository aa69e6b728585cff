// Clock.swift: the runtime's clock, CLOCK_MONOTONIC in nanoseconds (the same clock futex
// timeouts and timerfd use), and conversions from Duration.
import CUThreads

/// A point on CLOCK_MONOTONIC, in nanoseconds.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current time (vDSO clock_gettime).
    @inlinable
    public static var now: MonotonicInstant { MonotonicInstant(nanoseconds: cj_monotonic_ns()) }

    @inlinable
    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// This instant moved by `d`, saturating instead of overflowing.
    @inlinable
    public func advanced(by d: Duration) -> MonotonicInstant {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(d.nanosecondsSaturated)
        return MonotonicInstant(nanoseconds: overflow ? (d < .zero ? .min : .max) : sum)
    }

    /// Time from this instant to `other`.
    @inlinable
    public func duration(to other: MonotonicInstant) -> Duration {
        .nanoseconds(other.nanoseconds &- nanoseconds)
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at Int64's range.
    @inlinable
    public var nanosecondsSaturated: Int64 {
        let (s, atto) = components
        let (ns, o1) = s.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, o2) = ns.addingReportingOverflow(atto / 1_000_000_000)
        if o1 || o2 { return s < 0 ? .min : .max }
        return total
    }
}
