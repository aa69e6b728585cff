// TimerFD.swift: timerfd_create/settime/gettime: a one-shot or periodic timer read as an
// expiration count; a sleeper uthread per arming tells poll/epoll/select when it fires.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A timerfd. Deadlines are kept on the monotonic clock (a CLOCK_REALTIME absolute time
/// is converted when set; later jumps of the wall clock are not followed).
final class TimerFD: FileHandle, @unchecked Sendable {
    let clock: Int32
    private let lock = SpinLock()
    private var expiration: MonotonicInstant?
    private var interval: Int64 = 0
    private var ticks: UInt64 = 0
    private var generation = 0
    private var sleeper: JoinHandle<Void>?
    private var waiters: [UThreadRef] = []
    private let observers = ReadinessObservers()

    init(clock: Int32) { self.clock = clock }

    /// Counts expirations up to `now` (lock held).
    private func settle(_ now: MonotonicInstant) {
        guard let e = expiration, now >= e else { return }
        if interval > 0 {
            let n = (now.nanoseconds - e.nanoseconds) / interval + 1
            ticks &+= UInt64(n)
            // Saturating: an interval of centuries is valid (ktime_t saturates too).
            let (step, o1) = n.multipliedReportingOverflow(by: interval)
            let (next, o2) = e.nanoseconds.addingReportingOverflow(step)
            expiration = MonotonicInstant(nanoseconds: o1 || o2 ? .max : next)
        } else {
            ticks &+= 1
            expiration = nil
        }
    }

    var isSeekable: Bool { false }
    func size() throws(Errno) -> Int64 { 0 }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        guard buffer.count >= 8 else { throw .invalidArgument }
        while true {
            let (count, due) = lock.withLock { () -> (UInt64, MonotonicInstant?) in
                settle(.now)
                let n = ticks
                ticks = 0
                return (n, expiration)
            }
            if count > 0 {
                buffer.storeBytes(of: count, as: UInt64.self)
                return 8
            }
            if nonBlocking || !UThread.isInUThread { throw .wouldBlock }
            let me = UThread.current
            lock.withLock { waiters.append(me) }
            let outcome = UThread.wait(until: due)
            lock.withLock { if let i = waiters.firstIndex(of: me) { waiters.remove(at: i) } }
            if outcome == .interrupted { throw .interrupted }
        }
    }

    var readiness: Readiness {
        lock.withLock {
            settle(.now)
            return ticks > 0 ? [.readable] : []
        }
    }

    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }

    func close() { disarm() }

    private func disarm() {
        let old = lock.withLock { () -> JoinHandle<Void>? in
            generation += 1
            expiration = nil
            defer { sleeper = nil }
            return sleeper
        }
        old?.uthread.interrupt()
    }

    /// What is left and the interval, in nanoseconds (timerfd_gettime).
    func current() -> (value: Int64, interval: Int64) {
        lock.withLock {
            let now = MonotonicInstant.now
            settle(now)
            return (expiration.map { max(1, $0.nanoseconds - now.nanoseconds) } ?? 0, interval)
        }
    }

    /// timerfd_settime: arms (value > 0: the first expiration, relative or absolute on
    /// this timer's clock) or disarms (value 0); returns the old setting.
    func set(value: Int64, interval newInterval: Int64, absolute: Bool) -> (value: Int64, interval: Int64) {
        let old = current()
        disarm()
        let now = MonotonicInstant.now
        var due: MonotonicInstant?
        if value > 0 {
            var relative = value
            if absolute {
                var ts = timespec()
                clock_gettime(clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts)
                relative = value - (Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
            }
            due = now.advanced(by: .nanoseconds(max(0, relative)))
        }
        let (gen, wake) = lock.withLock { () -> (Int, [UThreadRef]) in
            ticks = 0
            expiration = due
            interval = newInterval
            defer { waiters.removeAll() }
            return (generation, waiters)
        }
        for w in wake { w.unpark() }
        if due != nil, let runtime = Runtime.current {
            let h: JoinHandle<Void> = runtime.spawn { [weak self] in self?.sleep(generation: gen) }
            lock.withLock { if generation == gen { sleeper = h } }
        }
        return old
    }

    /// The sleeper: at each expiration of arming `gen`, wakes readers and observers.
    private func sleep(generation gen: Int) {
        while true {
            guard let due = lock.withLock({ generation == gen ? expiration : nil }) else { return }
            if UThread.sleep(until: due) == .interrupted { continue }
            let wake = lock.withLock { () -> [UThreadRef]? in
                guard generation == gen else { return nil }
                settle(.now)
                defer { waiters.removeAll() }
                return waiters
            }
            guard let wake else { return }
            for w in wake { w.unpark() }
            observers.notify([.readable])
        }
    }
}

extension Handlers {
    static func registerTimerFD(_ d: Dispatcher) {
        d.register(.timerfd_create) { f, p throws(LinuxError) in
            let clock = Int32(truncatingIfNeeded: f.a0)
            guard f.a1 & ~(sockNonBlock | sockCloexec) == 0 else { throw LinuxError(.EINVAL) }
            switch clock {
            case CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME: break
            case CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM: throw LinuxError(.EPERM)  // needs CAP_WAKE_ALARM
            default: throw LinuxError(.EINVAL)
            }
            var status: OpenFlags = .readWrite
            if f.a1 & sockNonBlock != 0 { status.insert(.nonBlocking) }
            let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: "anon_inode:[timerfd]"),
                                handle: TimerFD(clock: clock), flags: status)
            return Int64(try p.descriptors.install(file, closeOnExec: f.a1 & sockCloexec != 0))
        }
        d.register(.timerfd_settime) { f, p throws(LinuxError) in
            let t = try timer(p, f.a0)
            guard f.a1 & ~3 == 0 else { throw LinuxError(.EINVAL) }  // TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET
            let interval = try UserTimespec.loadValid(at: f.a2).totalNanoseconds
            let value = try UserTimespec.loadValid(at: f.a2 + 16).totalNanoseconds
            if f.a3 != 0 { _ = try UserMemory.pointer(f.a3, 32, for: .write) }
            let old = t.set(value: value, interval: interval, absolute: f.a1 & 1 != 0)
            if f.a3 != 0 { try storeTimerSpec(old, at: f.a3) }
            return 0
        }
        d.register(.timerfd_gettime) { f, p throws(LinuxError) in
            let t = try timer(p, f.a0)
            try storeTimerSpec(t.current(), at: f.a1)
            return 0
        }
    }

    static func timer(_ p: LinuxProcess, _ fd: UInt64) throws(LinuxError) -> TimerFD {
        guard let t = try p.fd(fd).handle as? TimerFD else { throw LinuxError(.EINVAL) }
        return t
    }

    /// struct itimerspec { it_interval; it_value; }.
    static func storeTimerSpec(_ v: (value: Int64, interval: Int64), at address: UInt64) throws(LinuxError) {
        _ = try UserMemory.pointer(address, 32, for: .write)
        try UserMemory.store(v.interval / 1_000_000_000, at: address)
        try UserMemory.store(v.interval % 1_000_000_000, at: address + 8)
        try UserMemory.store(v.value / 1_000_000_000, at: address + 16)
        try UserMemory.store(v.value % 1_000_000_000, at: address + 24)
    }
}
