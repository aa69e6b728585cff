// Parking.swift: how a blocking socket call waits: the calling uthread joins the socket's
// waiters, drops the interface's lock and parks until the poller wakes it, a deadline
// passes or it is interrupted. UDP sockets, TCP sockets and listeners share it.
import UThreads

/// Why a parked uthread came back.
enum WaitOutcome { case woken, timedOut, interrupted }

/// A socket or listener whose callers park; `waiters` is guarded by the interface's lock.
protocol UThreadParking: AnyObject {
    var waiters: [UThreadRef] { get set }
}

extension UThreadParking {
    /// With `lock` held and on a uthread: parks until ``wakeAllWaiters()`` (or
    /// `waiters.removeFirst().unpark()`), `deadline`, or an interrupt; returns with `lock`
    /// held again. The caller re-checks its own condition before trusting the outcome.
    func parkWaiting(lock: borrowing SpinLock, until deadline: MonotonicInstant?) -> WaitOutcome {
        let me = UThread.current
        waiters.append(me)
        lock.unlock()
        var timedOut = false
        if let deadline { timedOut = UThread.park(until: deadline) } else { UThread.park() }
        let interrupted = UThread.takeInterrupt()
        lock.lock()
        if let k = waiters.firstIndex(of: me) { waiters.remove(at: k) }
        if interrupted { return .interrupted }
        if timedOut || deadline.map({ MonotonicInstant.now >= $0 }) == true { return .timedOut }
        return .woken
    }

    /// Unparks every waiter (they re-check their condition). Lock held.
    func wakeAllWaiters() {
        if waiters.isEmpty { return }
        for w in waiters { w.unpark() }
        waiters.removeAll(keepingCapacity: true)
    }
}
