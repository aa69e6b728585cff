// SocketEvents.swift: how a NetStack-backed socket waits and reports: NetStack's
// readiness callbacks (run under an interface's lock) unpark the socket's waiting
// uthreads and tell the epoll/poll observers; a blocking call retries a non-blocking
// attempt between parks, with SO_RCVTIMEO/SO_SNDTIMEO deadlines and EINTR.
import FileSystem
import Glibc
import SystemPackage
import UThreads

/// The waiters and readiness observers of one socket (or of a listener group).
final class SocketEvents: @unchecked Sendable {
    private let lock = SpinLock()
    private var waiters: [UThreadRef] = []
    let observers = ReadinessObservers()

    init() {}

    /// Readiness may have changed: wake the waiters (they retry) and the observers.
    /// Called from NetStack's readiness handlers with an interface's lock held: short,
    /// and nothing here calls back into NetStack.
    func signal(_ r: Readiness) {
        let wake = lock.withLock { () -> [UThreadRef] in
            if waiters.isEmpty { return [] }
            defer { waiters.removeAll(keepingCapacity: true) }
            return waiters
        }
        for w in wake { w.unpark() }
        observers.notify(r)
    }

    /// Runs `attempt` (non-blocking; nil: it would block) until it gives a result.
    /// `nonBlocking`: EAGAIN at once; otherwise the uthread parks until a signal, the
    /// `timeout` (EAGAIN, as Linux reports SO_RCVTIMEO/SO_SNDTIMEO) or an interrupt (EINTR).
    func wait<R>(nonBlocking: Bool, timeout: Duration?, _ attempt: () throws(Errno) -> R?) throws(Errno) -> R {
        let me: UThreadRef? = nonBlocking || !UThread.isInUThread ? nil : UThread.current
        var deadline: MonotonicInstant? = nil
        while true {
            // Enrolled before the attempt: a signal between the attempt and the park
            // leaves an unpark token, so the park returns at once.
            if let me { lock.withLock { waiters.append(me) } }
            let r: R?
            do { r = try attempt() } catch {
                withdraw(me)
                throw error
            }
            if let r { withdraw(me); return r }
            guard let me else { throw Errno(rawValue: EAGAIN) }
            if deadline == nil, let timeout { deadline = MonotonicInstant.now.advanced(by: timeout) }
            let outcome = UThread.wait(until: deadline)
            withdraw(me)
            if outcome == .interrupted { throw Errno(rawValue: EINTR) }
            if outcome == .timedOut {
                // One last look, then the timeout.
                if let r = try attempt() { return r }
                throw Errno(rawValue: EAGAIN)
            }
        }
    }

    private func withdraw(_ me: UThreadRef?) {
        guard let me else { return }
        lock.withLock { if let k = waiters.firstIndex(of: me) { waiters.remove(at: k) } }
    }
}
