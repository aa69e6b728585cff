// Input.swift: segment arrival (RFC 9293 §3.10.7): SYN-SENT's handshake rules, then for
// synchronized states the sequence checks with RFC 5961's RST/SYN/ACK hardening and
// RFC 7323's PAWS, ACK processing (RTT, congestion, fast retransmit, SACK), the text into
// the receive buffer (in order or held out of order), and FIN.

/// RFC 5961 §7: challenge ACKs per connection per second, at most.
let challengeACKLimit = 10

extension TCPConnection {
    /// Processes one arriving segment for this connection (RFC 9293 §3.10.7).
    public mutating func input(_ segment: TCPSegment, now: Int64) {
        statistics.segmentsReceived += 1
        switch current {
        case .closed, .listen: return
        case .synSent: synSentInput(segment, now: now)
        default: synchronizedInput(segment, now: now)
        }
    }

    /// Takes the peer's SYN: its ISN, window and options (RFC 9293 §3.10.7.2–3).
    mutating func acceptPeerSYN(_ syn: TCPSegment, now: Int64) {
        irs = syn.sequenceNumber
        rcvNxt = irs + 1
        lastAckSent = rcvNxt
        // The right edge starts at RCV.NXT (nothing offered yet). Left at its initial 0,
        // the modular max() that only moves it right would keep 0 whenever RCV.NXT lies
        // in the half of the sequence space "before" 0 (half the ISNs): every window
        // computation then believed a huge window was already offered, no window update
        // ever went out after a read, and a bulk sender sat on persist timers.
        rcvAdv = rcvNxt
        peerMSS = max(Int(syn.options.maximumSegmentSize ?? 536), 64)
        // RFC 7323 §2.2: scaling only when both sides sent the option.
        windowScalingNegotiated = configuration.windowScaling && syn.options.windowScale != nil
        if configuration.windowScaling, let shift = syn.options.windowScale {
            sendWindowShift = Int(min(shift, 14))
            receiveWindowShift = Int(Self.windowScale(forBuffer: configuration.receiveBufferSize))
        } else {
            sendWindowShift = 0
            receiveWindowShift = 0
        }
        sackEnabled = configuration.selectiveAcknowledgments && syn.options.sackPermitted
        if configuration.timestamps, let ts = syn.options.timestamp {
            timestampsEnabled = true
            tsRecent = ts.value
        } else {
            timestampsEnabled = false
        }
        // The window of a SYN is never scaled (RFC 7323 §2.2).
        sndWnd = Int(syn.window)
        maxSndWnd = sndWnd
        sndWl1 = syn.sequenceNumber
        sndWl2 = syn.acknowledgmentNumber
        lastReceiveTime = now
        negotiated()
    }

    /// Sizes what depends on the negotiated MSS: the initial window (RFC 6928).
    mutating func negotiated() {
        congestion = CongestionController(configuration.congestionControl,
                                          initialWindow: configuration.initialWindowSegments * sendMSS)
        receiveMSS = min(localMSS, peerMSS, 536)
    }

    mutating func enterEstablished(now: Int64) {
        current = finQueued ? .finWait1 : .established
        lastReceiveTime = now
        if handshakeRetransmitted {
            // RFC 5681 §3.1: after a lost SYN or SYN-ACK the initial window is one segment;
            // RFC 6298 §5.7: with no RTT sample, the RTO goes back to 3 s.
            congestion.congestionWindow = sendMSS
            rtt.fallBack(to: 3_000_000_000)
        }
    }

    mutating func enterTimeWait(now: Int64) {
        current = .timeWait
        lifetimeDeadline = now + configuration.timeWaitDuration.nanoseconds
        retransmitDeadline = nil
        persistDeadline = nil
        retransmitFirstPending = false
        probePending = false
    }

    /// RFC 5961 §7: an ACK in answer to a suspicious segment, rate-limited.
    mutating func challengeACK(now: Int64) {
        if let start = challengeSlotStart, now >= start, now - start < 1_000_000_000 {
        } else {
            challengeSlotStart = now
            challengeACKsInSlot = 0
        }
        guard challengeACKsInSlot < challengeACKLimit else { return }
        challengeACKsInSlot += 1
        statistics.challengeACKs += 1
        ackNow = true
    }

    // MARK: SYN-SENT (RFC 9293 §3.10.7.3)

    mutating func synSentInput(_ seg: TCPSegment, now: Int64) {
        let f = seg.flags
        if f.contains(.ack) && (seg.acknowledgmentNumber <= iss || seg.acknowledgmentNumber > sndMax) {
            if !f.contains(.rst) { resetToSend = (seg.acknowledgmentNumber, false) }
            statistics.droppedSegments += 1
            return
        }
        if f.contains(.rst) {
            // Acceptable only with an acceptable ACK (checked above).
            if f.contains(.ack) {
                statistics.resetsReceived += 1
                error = .refused
                enterClosed()
            }
            return
        }
        guard f.contains(.syn) else { return }
        let offeredScaling = configuration.windowScaling
        acceptPeerSYN(seg, now: now)
        if !offeredScaling { sendWindowShift = 0; receiveWindowShift = 0; windowScalingNegotiated = false }
        if f.contains(.ack) {
            if let sample = synRTT(seg, now: now) { rtt.sample(sample) }
            sndUna = seg.acknowledgmentNumber
            if sndNxt < sndUna { sndNxt = sndUna }
            recover = sndUna
            highRxt = sndUna
            retransmitDeadline = nil
            retransmitCount = 0
            timedSequence = nil
            rcvAdv = rcvNxt + min(receiveBuffer.windowSpace, 65535)
            enterEstablished(now: now)
            ackNow = true
            processText(seg, dropText: false, now: now)
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8): SYN-ACK from our ISN again.
            current = .synReceived
            sndNxt = iss
            simultaneousOpen = true
        }
    }

    /// The handshake's RTT sample: from the echoed timestamp, or from the SYN's send time
    /// if it was not retransmitted (Karn); nil when neither applies.
    private func synRTT(_ seg: TCPSegment, now: Int64) -> Int64? {
        if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
            return max(Int64(Int32(bitPattern: Self.timestampClock(now) &- ts.echoReply)), 0) * 1_000_000
        }
        return timedSequence != nil ? now - timedAt : nil
    }

    // MARK: synchronized states (RFC 9293 §3.10.7.4)

    mutating func synchronizedInput(_ seg: TCPSegment, now: Int64) {
        let f = seg.flags
        let window = max(rcvAdv - rcvNxt, 0)

        // The peer sent its SYN again: our SYN-ACK was lost. Send it again.
        if current == .synReceived && f.contains(.syn) && !f.contains(.ack) && !f.contains(.rst)
            && seg.sequenceNumber == irs {
            sndNxt = iss
            return
        }

        // Simultaneous open (RFC 9293 figure 8, line 6): the peer's SYN-ACK repeats the SYN
        // we already took, so the sequence test would refuse it; its ACK completes ours.
        if current == .synReceived && f.contains(.synACK) && !f.contains(.rst) && seg.sequenceNumber == irs {
            let ack = seg.acknowledgmentNumber
            guard ack > sndUna && ack <= sndMax else {
                resetToSend = (ack, false)
                return
            }
            sndWnd = Int(seg.window)
            maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = seg.sequenceNumber
            sndWl2 = ack
            enterEstablished(now: now)
            var synACK = seg
            synACK.window = 0
            newlyAcknowledged(synACK, now: now)
            return
        }

        // RFC 5961 §3.2: a RST must hit RCV.NXT exactly; elsewhere in the window it only
        // earns a challenge ACK, outside it nothing.
        if f.contains(.rst) {
            let inWindow = window == 0 ? seg.sequenceNumber == rcvNxt
                : seg.sequenceNumber >= rcvNxt && seg.sequenceNumber < rcvNxt + window
            guard inWindow else { statistics.droppedSegments += 1; return }
            guard seg.sequenceNumber == rcvNxt else { challengeACK(now: now); return }
            statistics.resetsReceived += 1
            switch current {
            case .synReceived: error = activeOpen ? .refused : .reset
            case .closing, .lastAck, .timeWait: break
            default: error = .reset
            }
            enterClosed()
            return
        }

        // RFC 5961 §4 / RFC 9293 §3.10.7.4 fourth: a SYN here, whatever its sequence
        // number, is answered with a challenge ACK.
        if f.contains(.syn) {
            challengeACK(now: now)
            return
        }

        // RFC 7323 §5.3 PAWS: a timestamp older than TS.Recent marks an old duplicate.
        if timestampsEnabled, let ts = seg.options.timestamp, Int32(bitPattern: ts.value &- tsRecent) < 0 {
            statistics.droppedSegments += 1
            ackNow = true
            return
        }

        // The acceptability test (RFC 9293 §3.10.7.4, first).
        let length = seg.sequenceLength
        let seq = seg.sequenceNumber
        var dropText = false
        var acceptable: Bool
        if length == 0 {
            acceptable = window == 0 ? seq == rcvNxt : seq >= rcvNxt && seq < rcvNxt + window
        } else if window == 0 {
            // A zero window takes nothing, but the ACK and window of a segment at RCV.NXT
            // still count; the text is dropped and ACKed (the window may have opened since).
            acceptable = seq == rcvNxt
            dropText = true
            if acceptable { ackNow = true }
        } else {
            let last = seq + (length - 1)
            acceptable = (seq >= rcvNxt && seq < rcvNxt + window) || (last >= rcvNxt && last < rcvNxt + window)
        }
        if !acceptable {
            if length > 0 && seq + length <= rcvNxt {
                statistics.duplicateSegments += 1
                if !seg.payload.isEmpty { reportDuplicate(seq, seq + seg.payload.count) }
            } else {
                statistics.droppedSegments += 1
            }
            // RFC 9293: a FIN again in TIME-WAIT restarts the 2 MSL wait.
            if current == .timeWait && f.contains(.fin) {
                lifetimeDeadline = now + configuration.timeWaitDuration.nanoseconds
            }
            ackNow = true
            // RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable,
            // but special allowance should be made to accept valid ACKs": a peer whose
            // sequence number is not exactly RCV.NXT (it sent past our closed window, or
            // its timeout moved SND.NXT back) still acknowledges our data, and ignoring
            // that would leave both ends waiting (processACK checks the ACK, RFC 5961 §5).
            if window == 0 && f.contains(.ack) && current != .synReceived {
                _ = processACK(seg, now: now)
            }
            return
        }

        // RFC 7323 §4.3: TS.Recent from a segment that covers Last.ACK.sent.
        if timestampsEnabled, let ts = seg.options.timestamp, seq <= lastAckSent { tsRecent = ts.value }
        lastReceiveTime = now
        keepaliveProbesSent = 0

        guard f.contains(.ack) else { return }

        if current == .synReceived {
            guard seg.acknowledgmentNumber > sndUna && seg.acknowledgmentNumber <= sndMax else {
                resetToSend = (seg.acknowledgmentNumber, false)
                return
            }
            sndWnd = Int(seg.window) << sendWindowShift
            maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = seq
            sndWl2 = seg.acknowledgmentNumber
            enterEstablished(now: now)
        }
        guard processACK(seg, now: now) else { return }
        if current == .closed { return }
        processText(seg, dropText: dropText, now: now)
    }

    // MARK: ACK

    /// RFC 9293 §3.10.7.4 fifth, with RFC 5961 §5.2. False when the segment is dropped.
    mutating func processACK(_ seg: TCPSegment, now: Int64) -> Bool {
        let ack = seg.acknowledgmentNumber
        if ack > sndMax || ack < sndUna - maxSndWnd {
            challengeACK(now: now)
            statistics.droppedSegments += 1
            return false
        }
        let newWindow = Int(seg.window) << sendWindowShift
        if ack > sndUna {
            newlyAcknowledged(seg, now: now)
        } else if ack == sndUna && sndMax > sndUna && seg.payload.isEmpty && seg.flags.isDisjoint(with: .synFIN) {
            if sackEnabled {
                // RFC 6675 §2's DupAck: only an ACK that SACKs something new counts, so a
                // duplicated frame (or a D-SACK, or a window update) is no evidence of loss.
                if scoreboard.add(seg.options.sackBlocks, una: sndUna, max: sndMax) { duplicateACK(now: now) }
            } else if newWindow == sndWnd {
                // RFC 5681 §2's duplicate ACK. A frame the network duplicated counts too: without
                // SACK it cannot be told from the identical duplicates a receiver sends for
                // back-to-back out-of-order segments (even the timestamp, with its 1 ms tick,
                // is often the same), and missing those would turn fast retransmits into
                // timeouts; three identical copies are needed for a spurious one.
                duplicateACK(now: now)
            }
        }
        // Window update, if the segment is newer than the one that last set it.
        if sndWl1 < seg.sequenceNumber || (sndWl1 == seg.sequenceNumber && sndWl2 <= ack) {
            sndWnd = newWindow
            sndWl1 = seg.sequenceNumber
            sndWl2 = ack
            maxSndWnd = max(maxSndWnd, sndWnd)
            if sndWnd > 0 && persistDeadline != nil {
                persistDeadline = nil
                persistBackoff = 0
            }
        }
        if let end = sentPastWindow {
            if sndUna >= end {
                sentPastWindow = nil
            } else if sndWnd > 0 && sndNxt > sndUna {
                // The window opened (RFC 9293 §3.8.6.1): what a timeout pushed past it was
                // dropped, so it goes again now, as much as fits, instead of waiting for a
                // timeout backed off against the closed window.
                sentPastWindow = nil
                sndNxt = sndUna
            }
        }
        return true
    }

    mutating func newlyAcknowledged(_ seg: TCPSegment, now: Int64) {
        let ack = seg.acknowledgmentNumber
        // Bytes of data (and FIN) newly acknowledged; the SYN is not data.
        let acked = ack - sndUna - (sndUna == iss ? 1 : 0)
        // RTT: RFC 7323 §4 RTTM from the echoed timestamp; otherwise Karn's timed segment.
        if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
            let ms = Int64(Int32(bitPattern: Self.timestampClock(now) &- ts.echoReply))
            if let t = timeoutTimestamp, Int32(bitPattern: ts.echoReply &- t) < 0 {
                // An echo older than the last timeout names a transmission from before it:
                // its ACK was lost (the peer echoes that TSval again when our retransmission
                // arrives as a duplicate, RFC 7323 §4.3), so "now − TSecr" measures the
                // timeout, not the path. Sampled, each such loss grew SRTT and RTTVAR by the
                // RTO itself and the RTO fed on itself to tens of seconds; Karn's rule
                // (RFC 6298 §3) applies instead: no sample, the backoff stays.
            } else if ms >= 0 {
                rtt.sample(ms * 1_000_000)
                timeoutTimestamp = nil
            }
        } else if let t = timedSequence, ack >= t {
            rtt.sample(now - timedAt)
        }
        if let t = timedSequence, ack >= t { timedSequence = nil }

        let dataAcked = SequenceNumber.min(ack, dataEnd) - sendBufferSeq
        if dataAcked > 0 {
            sendBuffer.removeFirst(dataAcked)
            sendBufferSeq += dataAcked
        }
        sndUna = ack
        if sndNxt < sndUna { sndNxt = sndUna }
        if highRxt < sndUna { highRxt = sndUna }
        retransmitCount = 0
        // RFC 6298 §5.2–5.3.
        retransmitDeadline = sndUna == sndMax ? nil : now + rtt.rto
        if sackEnabled {
            scoreboard.advance(to: ack)
            scoreboard.add(seg.options.sackBlocks, una: sndUna, max: sndMax)
        }
        let mss = sendMSS
        if inRecovery {
            if ack >= recover {
                // Full ACK: leave recovery (RFC 6582 §3.2 step 3, RFC 6675 §5).
                inRecovery = false
                let ssthresh = congestion.slowStartThreshold
                congestion.congestionWindow = sackEnabled ? ssthresh : min(ssthresh, max(sndMax - sndUna, mss) + mss)
            } else if !sackEnabled {
                // Partial ACK (RFC 6582 §3.2 step 4): resend the next hole, deflate.
                retransmitFirstPending = true
                congestion.congestionWindow = max(congestion.congestionWindow - acked + (acked >= mss ? mss : 0), mss)
            }
        } else if acked > 0 {
            congestion.onACK(acked: acked, mss: mss, now: now, smoothedRTT: rtt.smoothed)
        }
        duplicateACKs = 0
        if finSent && sndUna > dataEnd { ourFINAcknowledged(now: now) }
    }

    /// RFC 5681 §3.2 / RFC 6582 / RFC 6675 §5: count, and on the third (or when SACK
    /// shows the first segment lost) retransmit and enter recovery.
    mutating func duplicateACK(now: Int64) {
        duplicateACKs += 1
        statistics.duplicateACKsReceived += 1
        let mss = sendMSS
        if inRecovery {
            // RFC 5681 §3.2 step 4: each further duplicate inflates the window (NewReno).
            if !sackEnabled { congestion.congestionWindow += mss }
            return
        }
        let sackLoss = sackEnabled && scoreboard.lossBoundary(mss: mss) != nil && !scoreboard.isSACKed(sndUna)
        guard duplicateACKs >= duplicateThreshold || sackLoss else { return }
        // RFC 6582 §3.2 step 2: not for losses of data sent before the last recovery began.
        guard sndUna >= recover else { return }
        inRecovery = true
        recover = sndMax
        highRxt = sndUna
        statistics.recoveries += 1
        congestion.enterRecovery(flightSize: sndMax - sndUna, mss: mss, now: now)
        if !sackEnabled { congestion.congestionWindow = congestion.slowStartThreshold + 3 * mss }
        retransmitFirstPending = true
        timedSequence = nil
    }

    mutating func ourFINAcknowledged(now: Int64) {
        switch current {
        case .finWait1:
            current = .finWait2
            if userClosed { lifetimeDeadline = now + configuration.finWait2Timeout.nanoseconds }
        case .closing:
            enterTimeWait(now: now)
        case .lastAck:
            enterClosed()
        default: break
        }
    }

    // MARK: text and FIN

    mutating func processText(_ seg: TCPSegment, dropText: Bool, now: Int64) {
        switch current {
        case .established, .finWait1, .finWait2: break
        default: return
        }
        var seq = seg.sequenceNumber
        if seg.flags.contains(.syn) { seq += 1 }
        var payload = dropText ? UnsafeRawBufferPointer(start: nil, count: 0) : seg.payload
        var fin = seg.flags.contains(.fin) && !(dropText && !seg.payload.isEmpty)

        // Linux (tcp_rcv_state_process): new data after close() has nowhere to go: RST.
        if userClosed && !payload.isEmpty && seq + payload.count > rcvNxt {
            queueReset()
            receiveBuffer.removeAll()
            error = .reset
            enterClosed()
            return
        }
        // Trim what we already have.
        if seq < rcvNxt {
            let cut = rcvNxt - seq
            if cut >= payload.count {
                if !payload.isEmpty {
                    statistics.duplicateSegments += 1
                    reportDuplicate(seq, seq + payload.count)
                    ackNow = true
                }
                if fin && seq + payload.count < rcvNxt { fin = false }
                payload = UnsafeRawBufferPointer(start: nil, count: 0)
            } else if cut > 0 {
                reportDuplicate(seq, rcvNxt)
                payload = UnsafeRawBufferPointer(rebasing: payload[cut...])
            }
            seq = rcvNxt
        }
        // Trim to the ring (windows never offer more than it stores: a sender ignoring
        // our window, or an old window edge after the buffer shrank).
        let offset = seq - rcvNxt
        let room = max(receiveBuffer.free - offset, 0)
        if payload.count > room {
            payload = UnsafeRawBufferPointer(rebasing: payload[..<room])
            fin = false
            statistics.droppedSegments += 1
        }
        if !payload.isEmpty {
            if offset == 0 {
                receiveBuffer.write(payload, at: 0)
                let filledHole = receiveBuffer.rangeCount > 0
                let extra = filledHole ? receiveBuffer.takeContiguous(at: rcvNxt + payload.count) : 0
                let advance = payload.count + extra
                receiveBuffer.commit(advance)
                rcvNxt += advance
                lastDataReceiveTime = now
                statistics.bytesReceived += UInt64(advance)
                receiveMSS = max(receiveMSS, min(payload.count, localMSS))
                if filledHole {
                    // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
                    ackNow = true
                } else {
                    // RFC 9293 §3.8.6.3 / RFC 1122: delay, but ACK every second full segment.
                    unacknowledgedBytes += payload.count
                    if unacknowledgedBytes >= 2 * receiveMSS {
                        ackNow = true
                    } else if delayedACKDeadline == nil {
                        delayedACKDeadline = now + delayedACKNanoseconds
                    }
                }
            } else {
                let end = seq + payload.count
                if receiveBuffer.holds(seq, end) {
                    statistics.duplicateSegments += 1
                    reportDuplicate(seq, end)
                } else if receiveBuffer.outOfOrderBytes + payload.count > configuration.outOfOrderLimit {
                    statistics.droppedSegments += 1
                    fin = false
                } else {
                    receiveBuffer.write(payload, at: offset)
                    if receiveBuffer.insertRange(seq, end) {
                        statistics.outOfOrderSegments += 1
                    } else {
                        statistics.droppedSegments += 1
                        fin = false
                    }
                }
                // RFC 5681 §4.2: an out-of-order segment is acknowledged at once.
                ackNow = true
                if fin { pendingFIN = end }
                fin = false
            }
        }
        if fin {
            if seq + payload.count == rcvNxt {
                finArrived(now: now)
            } else {
                pendingFIN = seq + payload.count
                ackNow = true
            }
        } else if let p = pendingFIN, p == rcvNxt {
            finArrived(now: now)
        }
    }

    /// RFC 2883 D-SACK: the next ACK's first SACK block reports bytes received twice.
    mutating func reportDuplicate(_ start: SequenceNumber, _ end: SequenceNumber) {
        guard sackEnabled else { return }
        duplicateReport = SACKBlock(start: start, end: end)
    }

    /// The peer's FIN, in order (RFC 9293 §3.10.7.4 eighth).
    mutating func finArrived(now: Int64) {
        rcvNxt += 1
        finReceived = true
        pendingFIN = nil
        ackNow = true
        switch current {
        case .synReceived, .established:
            current = .closeWait
        case .finWait1:
            if finSent && sndUna > dataEnd { enterTimeWait(now: now) } else { current = .closing }
        case .finWait2:
            enterTimeWait(now: now)
        default: break
        }
    }
}
