// Parking.swift: how a blocking socket call waits: the calling uthread joins the socket's
// waiters, drops the interface's lock and parks until the poller wakes it, a deadline
// passes or it is interrupted. UDP sockets, TCP sockets and listeners share it.
import UThreads

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
        let outcome = UThread.wait(until: deadline)
        lock.lock()
        if let k = waiters.firstIndex(of: me) { waiters.remove(at: k) }
        return outcome
    }

    /// Unparks every waiter (they re-check their condition). Lock held.
    func wakeAllWaiters() {
        if waiters.isEmpty { return }
        for w in waiters { w.unpark() }
        waiters.removeAll(keepingCapacity: true)
    }
}
