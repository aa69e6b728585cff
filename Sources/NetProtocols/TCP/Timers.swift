// Timers.swift: the connection's timers, all deadlines on the caller's clock: retransmission
// (RFC 6298 with backoff; SYN and SYN-ACK retries), delayed ACK, persist (zero-window
// probes with backoff), keepalive (RFC 9293 §3.8.4), TIME-WAIT and FIN-WAIT-2.

extension TCPConnection {
    /// Runs the timers due at `now`.
    public mutating func handleTimers(now: Int64) {
        if let d = retransmitDeadline, now >= d {
            retransmitDeadline = nil
            retransmissionTimeout(now: now)
        }
        if let d = delayedACKDeadline, now >= d {
            delayedACKDeadline = nil
            interactive = false   // no answer came to carry the ACK
            if isSynchronized {
                ackNow = true
                statistics.delayedACKs += 1
            }
        }
        if let d = persistDeadline, now >= d {
            persistDeadline = nil
            persistTimeout(now: now)
        }
        if let d = keepaliveDeadline, now >= d {
            keepaliveTimeout(now: now)
        }
        if let d = lifetimeDeadline, now >= d {
            lifetimeDeadline = nil
            enterClosed()
        }
    }

    /// RFC 6298 §5.4–5.7: resend the oldest unacknowledged segment, back off, and give up
    /// after the configured number of tries (RFC 9293 §3.8.3's R2).
    mutating func retransmissionTimeout(now: Int64) {
        let handshake = current == .synSent || current == .synReceived
        guard handshake || sndUna < sndMax else { return }
        // A peer that keeps answering with a zero window is alive: the retransmissions are
        // window probes and do not count toward giving up (as in Linux's retransmit timer).
        let peerAlive = !handshake && sndWnd == 0 && lastReceiveTime > lastTimeout
        lastTimeout = now
        if !peerAlive { retransmitCount += 1 }
        let limit = switch current {
        case .synSent: configuration.synRetries
        case .synReceived: configuration.synAckRetries
        default: configuration.maximumRetransmissions
        }
        if retransmitCount > limit {
            error = .timedOut
            enterClosed()
            return
        }
        statistics.timeouts += 1
        rtt.backOff()
        timedSequence = nil
        if handshake {
            sndNxt = iss
            handshakeRetransmitted = true
        } else {
            let mss = sendMSS
            // RFC 5681 eq. 4 on the first timeout; later ones keep ssthresh (as Linux).
            if retransmitCount == 1 {
                congestion.timeout(flightSize: sndMax - sndUna, mss: mss, now: now)
            } else {
                congestion.congestionWindow = mss
            }
            inRecovery = false
            retransmitFirstPending = false
            duplicateACKs = 0
            // RFC 6582 §3.2 step 1: no fast retransmit for what was sent before the timeout.
            recover = sndMax
            highRxt = sndUna
            sndNxt = sndUna
            timeoutTimestamp = Self.timestampClock(now)
            // The oldest segment goes even into a zero window (RFC 9293 §3.8.6.1: the
            // window must be probed).
            forceSend = true
        }
        retransmitDeadline = now + rtt.rto
    }

    func persistInterval(_ backoff: Int) -> Int64 {
        let base = rtt.rto
        return backoff >= 30 ? rtt.maximum : min(base << Int64(backoff), rtt.maximum)
    }

    mutating func armPersist(now: Int64) {
        guard persistDeadline == nil, retransmitDeadline == nil else { return }
        persistDeadline = now + persistInterval(persistBackoff)
    }

    /// RFC 9293 §3.8.6.1: probe a zero window; with a small window, send what fits.
    mutating func persistTimeout(now: Int64) {
        guard isSynchronized, dataEnd > sndNxt || (finQueued && !finSent) else {
            persistBackoff = 0
            return
        }
        let windowRoom = (sndUna + sndWnd) - sndNxt
        if windowRoom <= 0 {
            probePending = true
            statistics.zeroWindowProbes += 1
        } else {
            forceSend = true
        }
        persistBackoff += 1
        persistDeadline = now + persistInterval(persistBackoff)
    }

    /// When the keepalive timer fires: idle time after the last segment received, then
    /// an interval per unanswered probe.
    var keepaliveDeadline: Int64? {
        let k = configuration.keepalive
        guard k.enabled, current == .established || current == .closeWait, sndUna == sndMax else { return nil }
        if keepaliveProbesSent == 0 { return lastReceiveTime + k.idle.nanoseconds }
        return lastKeepaliveProbe + k.interval.nanoseconds
    }

    mutating func keepaliveTimeout(now: Int64) {
        if keepaliveProbesSent >= configuration.keepalive.probes {
            // Linux (tcp_keepalive_timer): the peer is gone; reset and report ETIMEDOUT.
            error = .timedOut
            queueReset()
            enterClosed()
            return
        }
        keepaliveProbesSent += 1
        lastKeepaliveProbe = now
        probePending = true
        statistics.keepaliveProbes += 1
    }
}
