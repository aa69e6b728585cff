// TCPExit.swift: what a process's exit does to its TCP connections. Linux's exit closes
// every descriptor and the kernel then finishes each close on its own (an orphaned
// socket keeps sending its data and FIN until they are acknowledged). Here the stack
// lives in the process: when it ends, whatever it has not yet put on the wire (a FIN
// queued behind a full device ring, a retransmission after a lost frame) is lost, and the
// peer waits for an end of file that never comes. So the exit closes what the program
// left open and lets the stack run until the closes are through, bounded.
import NetProtocols
import UThreads

// Tunables.
/// Exit stops waiting for the closes when none has completed for this long (a peer that
/// has gone away, a link that is down).
let tcpExitStallLimit: Duration = .seconds(1)
/// And in any case after this long.
let tcpExitLimit: Duration = .seconds(5)

extension NetworkInterface {
    /// Closes, as close(2) would, every connection the application has not closed (FIN
    /// after any data; RST where unread data is left, or with SO_LINGER 0).
    public func closeAllTCPConnections() {
        lock.lock()
        let now = clock.now
        for (_, u) in tcp.connections {
            let b = u.takeUnretainedValue()
            if b.appClosed { continue }
            b.appClosed = true
            if b.connection == nil {
                b.releasePort()
            } else if b.configuration.linger == .zero {
                b.connection!.abort()
            } else {
                b.connection!.close()
            }
            b.afterChange(now: now)
            b.notify()
            b.wakeAll()
        }
        flush()
        lock.unlock()
        tcpBury()
    }

    /// Connections whose close is under way: data or a FIN of ours not yet acknowledged
    /// (FIN_WAIT_1, CLOSING, LAST_ACK).
    public var tcpClosesInProgress: Int {
        lock.withLock {
            var n = 0
            for (_, u) in tcp.connections {
                switch u.takeUnretainedValue().state {
                case .finWait1, .closing, .lastAck: n += 1
                default: break
                }
            }
            return n
        }
    }

    /// At the process's exit: closes what the application left open, then waits (parked,
    /// the stack running on the kthreads) until no close is in progress, giving up after
    /// `tcpExitStallLimit` without progress or `tcpExitLimit` in all. Returns the closes
    /// still in progress when it stopped (0: all through).
    public func finishConnectionsForExit() -> Int {
        closeAllTCPConnections()
        var pending = tcpClosesInProgress
        guard pending > 0, UThread.isInUThread else { return pending }
        let start = MonotonicInstant.now
        var lastProgress = start
        while pending > 0 {
            UThread.sleep(for: .milliseconds(1))
            let now = MonotonicInstant.now
            let left = tcpClosesInProgress
            if left < pending { lastProgress = now }
            pending = left
            if lastProgress.duration(to: now) > tcpExitStallLimit || start.duration(to: now) > tcpExitLimit { break }
        }
        return pending
    }
}
