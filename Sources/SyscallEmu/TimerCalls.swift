// TimerCalls.swift: interval timers (setitimer, getitimer, alarm) and POSIX timers
// (timer_create, settime, gettime, getoverrun, delete). The host keeps time: the
// instance is one host process, so its itimers (ITIMER_REAL, and the CPU-time
// ITIMER_VIRTUAL and ITIMER_PROF) and CPU-time clocks are the host's. Their signals
// reach the junction signal thread, which hands them to the application through the
// libOS's signal machinery: itimer signals as process-directed SIGALRM, SIGVTALRM,
// SIGPROF; POSIX timers on a reserved host signal whose value names the timer, turned
// into the signal, target thread (SIGEV_THREAD_ID) and si_value the application asked for.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// The application's POSIX timers, each backed by a host timer.
final class PosixTimers: @unchecked Sendable {
    struct Timer {
        var host: Int32
        var signal: Int32
        var notify: Int32
        var value: UInt64
        var thread: Int32?
    }

    private let lock = SpinLock()
    private var timers: [Int32: Timer] = [:]
    private var next: Int32 = 0

    func add(_ t: Timer) -> Int32 {
        lock.withLock {
            let id = next
            next += 1
            timers[id] = t
            return id
        }
    }

    subscript(id: Int32) -> Timer? { lock.withLock { timers[id] } }

    func remove(_ id: Int32) -> Timer? { lock.withLock { timers.removeValue(forKey: id) } }

    /// Reserves the next id (the host timer's value must carry it before it exists).
    func reserve() -> Int32 {
        lock.withLock {
            let id = next
            next += 1
            return id
        }
    }

    func set(_ id: Int32, _ t: Timer) { lock.withLock { timers[id] = t } }

    /// execve: every timer goes, host timers included.
    /// In a forked child: the host timers are the parent's; the child has none.
    func forgetAll() { lock.withLock { timers.removeAll() } }

    func deleteAll() {
        let all = lock.withLock { () -> [Timer] in
            defer { timers.removeAll() }
            return Array(timers.values)
        }
        for t in all { _ = cj_host_syscall(226, UInt64(UInt32(bitPattern: t.host)), 0, 0, 0, 0, 0) }
    }
}

extension LinuxProcess {
    /// The host signal POSIX timers fire with (queued to the signal thread, never used
    /// by the host libc; 63 is the kick).
    public static let hostTimerSignal: Int32 = 62

    /// A host timer fired: sends the application's signal for timer `id`.
    public func hostTimerExpired(_ id: Int32, overrun: Int32) {
        guard let t = compat.timers[id], t.notify != 1 else { return }
        let target = t.thread.flatMap { signals.thread(tid: $0) }
        if t.thread != nil && target == nil { return }  // its thread has ended
        let info = SignalInfo(code: -2 /* SI_TIMER */, pid: id, uid: UInt32(bitPattern: overrun), value: t.value)
        signals.send(t.signal, info, to: target)
    }
}

extension Handlers {
    static func registerTimers(_ d: Dispatcher) {
        // The host's interval timers: alarm and ITIMER_REAL are one timer, as in Linux.
        host(.setitimer, d)
        host(.getitimer, d)
        host(.alarm, d)
        d.register(.timer_create) { f, p throws(LinuxError) in
            var signal = SIGALRM, notify: Int32 = 0, value: UInt64 = 0, thread: Int32?
            let id = p.compat.timers.reserve()
            if f.a1 != 0 {
                value = try UserMemory.load(UInt64.self, at: f.a1)
                signal = try UserMemory.load(Int32.self, at: f.a1 + 8)
                notify = try UserMemory.load(Int32.self, at: f.a1 + 12)
                switch notify {
                case 0: break                      // SIGEV_SIGNAL
                case 1: break                      // SIGEV_NONE
                case 4:                            // SIGEV_THREAD_ID
                    let tid = try UserMemory.load(Int32.self, at: f.a1 + 16)
                    guard p.signals.thread(tid: tid) != nil else { throw LinuxError(.EINVAL) }
                    thread = tid
                default: throw LinuxError(.EINVAL)
                }
                if notify != 1 && !(1...64).contains(signal) { throw LinuxError(.EINVAL) }
            } else {
                value = UInt64(id)
            }
            _ = try UserMemory.pointer(f.a2, 4, for: .write)
            // struct sigevent for the host: value = our id, signal = the reserved one.
            var event = [UInt64](repeating: 0, count: 8)
            event[0] = UInt64(id)
            event[1] = UInt64(UInt32(bitPattern: LinuxProcess.hostTimerSignal)) | UInt64(notify == 1 ? 1 : 0) << 32
            var hostID: Int32 = -1
            let r = event.withUnsafeMutableBytes { e in
                withUnsafeMutablePointer(to: &hostID) { h in
                    cj_host_syscall(222, f.a0, UInt64(UInt(bitPattern: e.baseAddress!)), UInt64(UInt(bitPattern: h)), 0, 0, 0)
                }
            }
            if r < 0 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            p.compat.timers.set(id, PosixTimers.Timer(host: hostID, signal: signal, notify: notify, value: value, thread: thread))
            try UserMemory.store(id, at: f.a2)
            return 0
        }
        func hostTimer(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> UInt64 {
            guard let t = p.compat.timers[Int32(truncatingIfNeeded: f.a0)] else { throw LinuxError(.EINVAL) }
            return UInt64(UInt32(bitPattern: t.host))
        }
        d.register(.timer_settime) { f, p throws(LinuxError) in try hostCall(223, try hostTimer(f, p), f.a1, f.a2, f.a3) }
        d.register(.timer_gettime) { f, p throws(LinuxError) in try hostCall(224, try hostTimer(f, p), f.a1) }
        d.register(.timer_getoverrun) { f, p throws(LinuxError) in try hostCall(225, try hostTimer(f, p)) }
        d.register(.timer_delete) { f, p throws(LinuxError) in
            guard let t = p.compat.timers.remove(Int32(truncatingIfNeeded: f.a0)) else { throw LinuxError(.EINVAL) }
            return try hostCall(226, UInt64(UInt32(bitPattern: t.host)))
        }
    }
}
