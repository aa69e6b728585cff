// UserTime.swift: struct timespec arguments read from the program's memory: the one
// reader for every call that takes one, with Linux's timespec64_valid (EINVAL) and a
// huge tv_sec saturating to "forever" as ktime_t does, never an overflow trap.
import UThreads

/// struct timespec { time_t tv_sec; long tv_nsec; } as the program passed it.
struct UserTimespec: Equatable {
    var seconds: Int64
    var nanoseconds: Int64

    static let nanosecondsPerSecond: Int64 = 1_000_000_000

    /// The 16 bytes at `address` (EFAULT), unchecked: for calls with their own rules
    /// (utimensat's UTIME_NOW and UTIME_OMIT).
    static func load(at address: UInt64) throws(LinuxError) -> UserTimespec {
        UserTimespec(seconds: try UserMemory.load(Int64.self, at: address),
                     nanoseconds: try UserMemory.load(Int64.self, at: address + 8))
    }

    /// The timespec at `address`, checked as Linux's timespec64_valid checks a timeout or
    /// a time to set: EINVAL for a negative tv_sec or a tv_nsec outside [0, 10^9).
    static func loadValid(at address: UInt64) throws(LinuxError) -> UserTimespec {
        let t = try load(at: address)
        guard t.isValid else { throw LinuxError(.EINVAL) }
        return t
    }

    var isValid: Bool { seconds >= 0 && nanoseconds >= 0 && nanoseconds < Self.nanosecondsPerSecond }

    /// In nanoseconds, saturating at Int64.max (KTIME_MAX) for a huge tv_sec: a valid
    /// timespec past 292 years is a wait without end, as in Linux.
    var totalNanoseconds: Int64 {
        let (s, o1) = seconds.multipliedReportingOverflow(by: Self.nanosecondsPerSecond)
        let (t, o2) = s.addingReportingOverflow(nanoseconds)
        if o1 || o2 { return seconds < 0 ? .min : .max }
        return t
    }

    /// The deadline this long after now (saturating).
    var deadlineFromNow: MonotonicInstant { MonotonicInstant.now.advanced(by: .nanoseconds(totalNanoseconds)) }
}
