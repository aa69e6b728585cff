// Output.swift: what to send next: a queued RST, the SYN or SYN-ACK, retransmissions
// (fast retransmit, NewReno partial ACKs, SACK holes chosen by RFC 6675 NextSeg), new data
// under the peer's and the congestion window (with RFC 3042 limited transmit), Nagle
// (RFC 896) and sender SWS avoidance (RFC 9293 §3.8.6.2.1), the FIN, probes, and ACKs
// carrying a window that avoids receiver SWS (§3.8.6.2.2), timestamps and SACK blocks.

extension TCPConnection {
    /// The next segment to transmit now (ACKs, data under the congestion and peer
    /// windows, retransmissions, FIN, RST, probes), or nil. Call until nil.
    public mutating func nextSegment(now: Int64) -> TCPOutgoingSegment? {
        if let r = resetToSend {
            resetToSend = nil
            statistics.resetsSent += 1
            statistics.segmentsSent += 1
            return TCPOutgoingSegment(sequenceNumber: r.seq, acknowledgmentNumber: r.ack ? rcvNxt : SequenceNumber(0),
                                      flags: r.ack ? .rstACK : .rst, window: 0)
        }
        switch current {
        case .closed, .listen:
            return nil
        case .synSent, .synReceived:
            if sndNxt == iss { return synSegment(now: now) }
            return current == .synReceived && ackNow ? acknowledgment(now: now) : nil
        case .timeWait, .finWait2:
            if current == .finWait2 && userClosed && lifetimeDeadline == nil {
                lifetimeDeadline = now + configuration.finWait2Timeout.nanoseconds
            }
            return ackNow ? acknowledgment(now: now) : nil
        case .established, .closeWait, .finWait1, .closing, .lastAck:
            break
        }
        if let s = retransmission(now: now) { return s }
        if let s = dataSegment(now: now) { return s }
        // RFC 6675 NextSeg rule 3: nothing lost to resend and no new data: fill a hole
        // below the highest SACKed byte anyway.
        if let hole = sackHole(lostOnly: false) { return resendHole(hole, now: now) }
        if probePending {
            probePending = false
            // A segment one below SND.UNA: the peer must answer with an ACK carrying its
            // window (zero-window probe and keepalive alike, as Linux sends them).
            return finish(TCPOutgoingSegment(sequenceNumber: sndUna - 1, acknowledgmentNumber: rcvNxt, flags: .ack,
                                             window: 0, options: segmentOptions(now: now)))
        }
        return ackNow ? acknowledgment(now: now) : nil
    }

    // MARK: pieces

    /// Options every segment after the handshake carries: the timestamp (RFC 7323 §3.2),
    /// and SACK blocks while data is held out of order (RFC 2018 §4; three fit beside a
    /// timestamp).
    func segmentOptions(now: Int64) -> TCPOptions {
        var o = TCPOptions()
        if timestampsEnabled { o.timestamp = TCPTimestamp(value: Self.timestampClock(now), echoReply: tsRecent) }
        let limit = timestampsEnabled ? 3 : 4
        if let d = duplicateReport {
            o.sackBlocks.append(d)
            let recent = receiveBuffer.sackBlocks(limit: limit - 1)
            for i in 0..<recent.count { o.sackBlocks.append(recent[i]) }
        } else if sackEnabled && receiveBuffer.rangeCount > 0 {
            o.sackBlocks = receiveBuffer.sackBlocks(limit: limit)
        }
        return o
    }

    /// Fills in the window and does the bookkeeping of every segment that carries an ACK.
    mutating func finish(_ segment: TCPOutgoingSegment) -> TCPOutgoingSegment {
        var s = segment
        s.acknowledgmentNumber = rcvNxt
        s.window = windowToAdvertise()
        lastAckSent = rcvNxt
        ackNow = false
        delayedACKDeadline = nil
        unacknowledgedBytes = 0
        duplicateReport = nil
        statistics.segmentsSent += 1
        return s
    }

    mutating func acknowledgment(now: Int64) -> TCPOutgoingSegment {
        // The highest sequence number sent (Linux's snd_nxt, which a timeout does not move
        // back): after go-back-N rewound SND.NXT, an ACK from there lies below what the peer
        // already holds, fails its acceptability test (RFC 9293 §3.10.7.4) and is dropped with
        // its ACK field. And never past the peer's window (Linux's tcp_acceptable_seq), which
        // a timeout into a zero window crosses.
        var seq = sndNxt
        if current != .synReceived && isSynchronized {
            seq = SequenceNumber.min(sndMax, sndUna + sndWnd)
        }
        return finish(TCPOutgoingSegment(sequenceNumber: seq, acknowledgmentNumber: rcvNxt, flags: .ack, window: 0,
                                         options: segmentOptions(now: now)))
    }

    /// The window to advertise (scaled down), moving the right edge only by at least
    /// min(buffer / 2, MSS) (RFC 9293 §3.8.6.2.2) and never to the left (§3.8.6.2.2 too).
    mutating func windowToAdvertise() -> UInt16 {
        let advertised = max(rcvAdv - rcvNxt, 0)
        var window = receiveBuffer.windowSpace
        if window - advertised < min(receiveBuffer.capacity / 2, localMSS) { window = advertised }
        window = min(window, 65535 << receiveWindowShift)
        var field = window >> receiveWindowShift
        if field << receiveWindowShift < advertised {
            // Scaling rounds down; round up instead rather than shrink the window. The
            // ring's slack (one scaling unit) stores what that offers beyond SO_RCVBUF.
            field = (advertised + (1 << receiveWindowShift) - 1) >> receiveWindowShift
        }
        // Never offer what cannot be stored: a sender may fill every byte offered, and
        // trimming it would cost a retransmission (rounding up repeatedly could creep).
        field = min(field, 65535, receiveBuffer.free >> receiveWindowShift)
        rcvAdv = SequenceNumber.max(rcvAdv, rcvNxt + (field << receiveWindowShift))
        return UInt16(field)
    }

    /// After the application read: a window update when the window has at least doubled
    /// and grown by a useful amount (Linux's tcp_cleanup_rbuf; SWS rule of §3.8.6.2.2).
    mutating func windowOpened() {
        guard isSynchronized, !finReceived else { return }
        // Linux's tcp_cleanup_rbuf too: a delayed ACK goes now once the application has
        // read everything (unless it answers requests: then the answer carries it) or
        // more than a segment waits for one. A sender blocked on a full send buffer with a
        // short tail that Nagle holds waits for exactly that ACK (40 ms a round otherwise).
        if delayedACKDeadline != nil && ((receiveBuffer.count == 0 && !interactive) || unacknowledgedBytes > localMSS) {
            ackNow = true
        }
        let advertised = max(rcvAdv - rcvNxt, 0)
        let free = receiveBuffer.windowSpace
        if free - advertised >= min(receiveBuffer.capacity / 2, localMSS) && free >= 2 * advertised {
            ackNow = true
            statistics.windowUpdates += 1
        }
    }

    mutating func synSegment(now: Int64) -> TCPOutgoingSegment {
        var o = TCPOptions()
        o.maximumSegmentSize = UInt16(clamping: localMSS)
        let flags: TCPFlags
        if current == .synSent {
            flags = .syn
            if configuration.windowScaling { o.windowScale = UInt8(receiveWindowShift) }
            o.sackPermitted = configuration.selectiveAcknowledgments
            if configuration.timestamps { o.timestamp = TCPTimestamp(value: Self.timestampClock(now), echoReply: 0) }
        } else {
            // RFC 7323 §2.2 / RFC 2018 §2: a SYN-ACK carries only what the SYN offered.
            flags = .synACK
            if windowScalingNegotiated {
                o.windowScale = UInt8(receiveWindowShift)
            }
            o.sackPermitted = sackEnabled
            if timestampsEnabled { o.timestamp = TCPTimestamp(value: Self.timestampClock(now), echoReply: tsRecent) }
        }
        // Our SYN again, now with an ACK, is no retransmission in a simultaneous open.
        let retransmission = sndMax > iss && !simultaneousOpen
        simultaneousOpen = false
        sndNxt = iss + 1
        sndMax = SequenceNumber.max(sndMax, sndNxt)
        if retransmission {
            statistics.retransmittedSegments += 1
            statistics.timeoutRetransmits += 1
        } else {
            timedSequence = sndNxt
            timedAt = now
        }
        if retransmitDeadline == nil { retransmitDeadline = now + rtt.rto }
        lastSendTime = now
        // The window of a SYN is not scaled (RFC 7323 §2.2).
        let window = min(receiveBuffer.windowSpace, 65535)
        if current == .synReceived { rcvAdv = SequenceNumber.max(rcvAdv, rcvNxt + window) }
        lastAckSent = rcvNxt
        ackNow = false
        statistics.segmentsSent += 1
        return TCPOutgoingSegment(sequenceNumber: iss, acknowledgmentNumber: flags.contains(.ack) ? rcvNxt : SequenceNumber(0),
                                  flags: flags, window: UInt16(window), options: o)
    }

    /// Largest payload of a segment carrying `options`.
    func payloadLimit(_ options: TCPOptions) -> Int {
        max(min(peerMSS, localMSS) - options.encodedLength, 1)
    }

    /// Largest payload of one new data segment: a whole number of `limit`-sized wire
    /// segments when the device segments (the last one full, so the device's cut at the
    /// MTU gives the same segments we would have sent), else `limit`.
    func burstLimit(_ limit: Int) -> Int {
        guard segmentationOffload > limit, peerMSS >= localMSS else { return limit }
        return segmentationOffload / limit * limit
    }

    /// The same bytes again: [start, min(end, start + one segment)), with the FIN if it
    /// lies there and was sent.
    mutating func resend(from start: SequenceNumber, to end: SequenceNumber, now: Int64) -> TCPOutgoingSegment {
        let options = segmentOptions(now: now)
        let dataLimit = SequenceNumber.min(end, dataEnd)
        let length = max(min(payloadLimit(options), dataLimit - start), 0)
        let fin = finSent && start + length == dataEnd && end > dataEnd
        var flags: TCPFlags = .ack
        if fin { flags.insert(.fin) }
        statistics.retransmittedSegments += 1
        timedSequence = nil
        if retransmitDeadline == nil { retransmitDeadline = now + rtt.rto }
        lastSendTime = now
        let segmentEnd = start + length + (fin ? 1 : 0)
        if sndNxt < segmentEnd && sndNxt >= start { sndNxt = segmentEnd }
        return finish(TCPOutgoingSegment(sequenceNumber: start, acknowledgmentNumber: rcvNxt, flags: flags, window: 0,
                                         options: options, payloadLength: length))
    }

    /// Fast retransmit, a NewReno partial ACK's retransmission, or RFC 6675 NextSeg rule 1.
    mutating func retransmission(now: Int64) -> TCPOutgoingSegment? {
        guard sndUna < sndMax else { retransmitFirstPending = false; return nil }
        if retransmitFirstPending {
            retransmitFirstPending = false
            statistics.fastRetransmits += 1
            let s = resend(from: sndUna, to: sndMax, now: now)
            let end = s.sequenceNumber + s.payloadLength + (s.flags.contains(.fin) ? 1 : 0)
            if highRxt < end { highRxt = end }
            return s
        }
        guard let hole = sackHole(lostOnly: true) else { return nil }
        return resendHole(hole, now: now)
    }

    /// A hole NextSeg may fill now (rule 1 when `lostOnly`, rule 3 otherwise), if the
    /// congestion window leaves room for a segment beside the pipe.
    func sackHole(lostOnly: Bool) -> (start: SequenceNumber, end: SequenceNumber)? {
        guard inRecovery && sackEnabled && sndUna < sndMax else { return nil }
        let mss = sendMSS
        let pipe = scoreboard.pipe(una: sndUna, max: sndMax, highRxt: highRxt, mss: mss)
        guard congestion.congestionWindow - pipe >= mss else { return nil }
        return lostOnly ? scoreboard.nextLostHole(from: highRxt, una: sndUna, mss: mss)
                        : scoreboard.nextHole(from: highRxt, una: sndUna)
    }

    mutating func resendHole(_ hole: (start: SequenceNumber, end: SequenceNumber), now: Int64) -> TCPOutgoingSegment {
        statistics.sackRetransmits += 1
        let s = resend(from: hole.start, to: hole.end, now: now)
        let end = s.sequenceNumber + s.payloadLength + (s.flags.contains(.fin) ? 1 : 0)
        if highRxt < end { highRxt = end }
        return s
    }

    /// Data from SND.NXT (new, or again after a timeout), and the FIN after it.
    mutating func dataSegment(now: Int64) -> TCPOutgoingSegment? {
        // After a timeout, what the peer has SACKed need not go again.
        if sackEnabled && sndNxt < sndMax {
            let skipped = scoreboard.skipSACKed(sndNxt)
            if skipped != sndNxt { sndNxt = SequenceNumber.min(skipped, sndMax) }
        }
        let available = max(dataEnd - sndNxt, 0)
        let finToSend = finQueued && sndNxt <= dataEnd
        guard available > 0 || finToSend else { return nil }
        let isRetransmission = sndNxt < sndMax
        let mss = sendMSS
        // RFC 5681 §4.1: after an idle RTO, start again from the restart window.
        if !isRetransmission && sndUna == sndMax && configuration.slowStartAfterIdle && now - lastSendTime > rtt.rto {
            congestion.restart(window: configuration.initialWindowSegments * mss, now: now)
        }
        // In flight: RFC 6675's pipe in recovery; otherwise what lies between SND.UNA and
        // SND.NXT less what the peer has SACKed (after a timeout SND.NXT skips over it).
        let flight = inRecovery && sackEnabled
            ? scoreboard.pipe(una: sndUna, max: sndMax, highRxt: highRxt, mss: mss)
            : sndNxt - sndUna - (sackEnabled ? scoreboard.sackedBytes(below: sndNxt) : 0)
        let windowRoom = (sndUna + sndWnd) - sndNxt
        // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment
        // go beyond cwnd, so a small window still collects three duplicates.
        let limitedTransmit = !inRecovery && !isRetransmission ? min(duplicateACKs, 2) * mss : 0
        var room = max(min(congestion.congestionWindow + limitedTransmit - flight, windowRoom), 0)
        let options = segmentOptions(now: now)
        let limit = payloadLimit(options)
        if forceSend && room == 0 && isRetransmission {
            room = min(limit, mss)
            // Beyond the window: remember it, to send it again when the window opens.
            if windowRoom < room { sentPastWindow = sndNxt + room }
        }
        let length = min(available, isRetransmission ? limit : burstLimit(limit), room)
        if available > 0 && length == 0 {
            // Window-limited with nothing in flight: the persist timer keeps probing
            // (RFC 9293 §3.8.6.1).
            if windowRoom <= 0 && sndUna == sndMax { armPersist(now: now) }
            return nil
        }
        if !isRetransmission && length > 0 {
            let full = length >= min(limit, mss)
            // Nagle (RFC 896, RFC 9293 §3.7.4) with Minshall's refinement, as Linux: a
            // short segment waits only while an earlier short one is unacknowledged (a
            // bulk sender's tail must not wait for the receiver's delayed ACK); no delay
            // when the application asked for none; a FIN pushes.
            let shortInFlight = lastShortEnd > sndUna && lastShortEnd <= sndMax
            // TCP_CORK holds every short segment, in flight or not (tcp_nagle_check).
            let push = length == available
                && (finQueued || !configuration.cork && (configuration.noDelay || sndUna == sndMax || !shortInFlight))
            // Sender SWS avoidance (§3.8.6.2.1): half the largest window is worth sending.
            let half = maxSndWnd > 0 && length >= maxSndWnd / 2 && !configuration.cork
            if !(full || push || half || forceSend) {
                if sndUna == sndMax { armPersist(now: now) }
                return nil
            }
        }
        forceSend = false
        let fin = finQueued && sndNxt + length == dataEnd
        var flags: TCPFlags = .ack
        if length > 0 && sndNxt + length == dataEnd { flags.insert(.psh) }
        if fin { flags.insert(.fin) }
        let start = sndNxt
        let end = start + length + (fin ? 1 : 0)
        if isRetransmission {
            // Only a timeout moves SND.NXT back, so this is go-back-N after one.
            statistics.retransmittedSegments += 1
            statistics.timeoutRetransmits += 1
            timedSequence = nil
        } else if timedSequence == nil {
            timedSequence = end
            timedAt = now
        }
        if !isRetransmission && length < mss { lastShortEnd = end }
        // This segment carries an awaited ACK, or answers data that just came: without the
        // second rule a reader that ACKs before it answers (a pure ACK at each read)
        // would never turn interactive, and each request and answer would cost an ACK.
        if length > 0 {
            interactive = rcvNxt != lastAckSent || now - lastDataReceiveTime < delayedACKNanoseconds
        }
        let fresh = max(end - SequenceNumber.max(start, sndMax), 0)
        statistics.bytesSent += UInt64(min(fresh, length))
        sndNxt = end
        sndMax = SequenceNumber.max(sndMax, end)
        if retransmitDeadline == nil { retransmitDeadline = now + rtt.rto }
        persistDeadline = nil
        lastSendTime = now
        return finish(TCPOutgoingSegment(sequenceNumber: start, acknowledgmentNumber: rcvNxt, flags: flags, window: 0,
                                         options: options, payloadLength: length))
    }
}
