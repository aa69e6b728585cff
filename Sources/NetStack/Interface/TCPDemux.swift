// TCPDemux.swift: the interface's TCP side: connections by 4-tuple, listeners and the
// port table, segment input (connection, listener or RST), segment output into frames,
// and the timer heap that runs each connection's timers at its next deadline.
import HeapModule
import NICQueuesCore
import UThreads

// Tunables.
/// Stale timer entries tolerated before the heap is rebuilt without them (lazy deletion:
/// a connection whose deadline moves earlier leaves its old entry behind).
let tcpTimerCompactionFloor = 64
/// Largest sleep of the interface's timer uthread when no TCP deadline is nearer (the ARP
/// and reassembly timers' granularity).
let tcpTimerIdleSleep: Int64 = timerInterval

/// A connection's key in the demultiplexing table: the remote address and port and the
/// local port (the local address is always the interface's), packed in one word so
/// hashing and comparing never allocate.
struct TCPFlowKey: Hashable {
    var bits: UInt64
    @inline(__always)
    init(localPort: UInt16, remote: SocketAddress) {
        bits = UInt64(remote.address.rawValue) << 32 | UInt64(remote.port) << 16 | UInt64(localPort)
    }
}

/// One entry of the timer heap. Valid while `generation` is its control block's current
/// one; older entries are stale and skipped when they surface (lazy deletion).
struct TCPTimerEntry: Comparable {
    var deadline: Int64
    var generation: UInt32
    var block: Unmanaged<TCPControlBlock>
    static func < (a: TCPTimerEntry, b: TCPTimerEntry) -> Bool { a.deadline < b.deadline }
    static func == (a: TCPTimerEntry, b: TCPTimerEntry) -> Bool {
        a.deadline == b.deadline && a.generation == b.generation && a.block.toOpaque() == b.block.toOpaque()
    }
}

/// The interface's TCP state, guarded by the interface's lock.
///
/// The table holds one retain of each control block in it (taken at insertion, given up
/// when the connection is finished), so a socket the application closed lingers until
/// its FIN exchange and TIME_WAIT are over. Heap entries hold their block unretained; a
/// block that leaves the table with entries still in the heap is kept (`retired`) until
/// the last one surfaces. Final releases are deferred to `graveyard` and happen after
/// the lock is dropped (a deinit must never run under the spin lock).
struct TCPDemux {
    var connections: [TCPFlowKey: Unmanaged<TCPControlBlock>] = [:]
    /// Listening sockets by port, unretained (a listener removes itself when it closes).
    var listeners: [UInt16: Unmanaged<TCPListener>] = [:]
    /// Sockets bound to each port (listeners, connections, bound sockets). TCP's port
    /// space is apart from UDP's, as in Linux.
    let portUse: UnsafeMutablePointer<UInt32>
    var nextEphemeral: UInt16
    var timers = Heap<TCPTimerEntry>()
    var staleTimers = 0
    /// Control blocks to release once the lock is dropped.
    var graveyard: [Unmanaged<TCPControlBlock>] = []
    /// Made on first use (they draw random keys).
    var isnGenerator: ISNGenerator?
    var cookies: SYNCookies?

    init() {
        portUse = .allocate(capacity: 65536)
        portUse.initialize(repeating: 0, count: 65536)
        nextEphemeral = UInt16.random(in: ephemeralPorts)
        timers.reserveCapacity(256)
    }

    func deallocate() { portUse.deallocate() }

    /// The earliest deadline in the heap (stale entries included: they only wake early).
    var earliestDeadline: Int64? { timers.min?.deadline }

    mutating func isn(local: SocketAddress, remote: SocketAddress, now: Int64) -> SequenceNumber {
        if isnGenerator == nil { isnGenerator = ISNGenerator() }
        return isnGenerator!.isn(local: local, remote: remote, now: now)
    }
}

extension NetworkInterface {
    /// The MSS of our connections: what one frame of the device and the MTU carry.
    var tcpMSS: Int { min(configuration.mtu, pool.frameCapacity - ethernetHeaderLength) - IPv4Header.length - TCPHeader.minimumLength }

    /// Live connections in the table (diagnostics and tests).
    public var tcpConnectionCount: Int { lock.withLock { tcp.connections.count } }

    // MARK: ports (lock held)

    /// Takes `port` for a socket; false when it is in use and `shared` is not set.
    func tcpBindPort(_ port: UInt16, shared: Bool = false) -> Bool {
        let p = Int(port)
        if tcp.portUse[p] != 0 && !shared { return false }
        tcp.portUse[p] &+= 1
        return true
    }

    func tcpReleasePort(_ port: UInt16) {
        let p = Int(port)
        if tcp.portUse[p] > 0 { tcp.portUse[p] -= 1 }
    }

    /// A free ephemeral port, taken; nil when the range is exhausted.
    func tcpAllocateEphemeralPort() -> UInt16? {
        let span = Int(ephemeralPorts.upperBound - ephemeralPorts.lowerBound) + 1
        for _ in 0..<span {
            let p = tcp.nextEphemeral
            tcp.nextEphemeral = p >= ephemeralPorts.upperBound ? ephemeralPorts.lowerBound : p + 1
            if tcp.portUse[Int(p)] == 0 {
                tcp.portUse[Int(p)] = 1
                return p
            }
        }
        return nil
    }

    // MARK: the connection table (lock held)

    /// Puts `block` in the table (one retain); false when the 4-tuple is taken.
    func tcpInsert(_ block: TCPControlBlock, key: TCPFlowKey) -> Bool {
        if tcp.connections[key] != nil { return false }
        tcp.connections[key] = Unmanaged.passRetained(block)
        return true
    }

    /// Takes a finished connection out of the table; its retain goes once no timer entry
    /// refers to it.
    func tcpRetire(_ block: TCPControlBlock, key: TCPFlowKey) {
        guard let u = tcp.connections[key], u.toOpaque() == Unmanaged.passUnretained(block).toOpaque() else { return }
        tcp.connections[key] = nil
        // Every entry left in the heap is stale now.
        if block.timerAt != .max { tcp.staleTimers += 1 }
        block.timerGeneration &+= 1
        block.timerAt = .max
        if block.timerEntries == 0 { tcp.graveyard.append(u) } else { block.retired = true }
    }

    /// Releases what the table let go of. Call without the lock.
    func tcpBury() {
        guard lock.withLock({ !tcp.graveyard.isEmpty }) else { return }
        let dead = lock.withLock { () -> [Unmanaged<TCPControlBlock>] in
            let d = tcp.graveyard
            tcp.graveyard.removeAll(keepingCapacity: true)
            return d
        }
        for u in dead { u.release() }
    }

    // MARK: timers (lock held)

    /// Makes sure `block`'s timers run at `deadline` at the latest.
    func tcpSchedule(_ block: TCPControlBlock, at deadline: Int64) {
        guard deadline < block.timerAt else { return }
        if block.timerAt != .max { tcp.staleTimers += 1 }
        block.timerGeneration &+= 1
        block.timerAt = deadline
        block.timerEntries += 1
        tcp.timers.insert(TCPTimerEntry(deadline: deadline, generation: block.timerGeneration, block: Unmanaged.passUnretained(block)))
        if deadline < timerWakeAt, let waker = timerWaker {
            timerWakeAt = deadline
            waker.unpark()
        }
        if tcp.staleTimers > tcpTimerCompactionFloor && tcp.staleTimers * 2 > tcp.timers.count { tcpCompactTimers() }
    }

    /// Runs the timers of every connection whose deadline has come.
    func runTCPTimers(now: Int64) {
        while let top = tcp.timers.min, top.deadline <= now {
            let entry = tcp.timers.removeMin()
            let u = entry.block
            let block = u.takeUnretainedValue()
            block.timerEntries -= 1
            if entry.generation != block.timerGeneration {
                tcp.staleTimers -= 1
                if block.retired && block.timerEntries == 0 { tcp.graveyard.append(u) }
                continue
            }
            block.timerAt = .max
            block.timersDue(now: now)
        }
    }

    /// Rebuilds the heap without its stale entries.
    func tcpCompactTimers() {
        var live: [TCPTimerEntry] = []
        live.reserveCapacity(tcp.timers.count - tcp.staleTimers)
        for e in tcp.timers.unordered {
            let block = e.block.takeUnretainedValue()
            if e.generation == block.timerGeneration {
                live.append(e)
            } else {
                block.timerEntries -= 1
                if block.retired && block.timerEntries == 0 { tcp.graveyard.append(e.block) }
            }
        }
        tcp.timers = Heap(live)
        tcp.staleTimers = 0
    }

    /// When the timer uthread should wake next (lock held): the earliest TCP deadline, at
    /// most `tcpTimerIdleSleep` from now; it is unparked when an earlier one is scheduled.
    func nextTimerWake(now: Int64) -> Int64 {
        var wake = now &+ tcpTimerIdleSleep
        if case .monotonic = clock, let d = tcp.earliestDeadline, d < wake { wake = max(d, now) }
        return wake
    }

    // MARK: input (lock held)

    /// A TCP segment for us: to its connection, else to a listener on the port, else
    /// answered with RST (RFC 9293 §3.10.7.1).
    func inputTCP(_ ip: IPv4Packet, broadcast: Bool, now: Int64) {
        let verify = verifyChecksums
        guard let view = counters.wire.counting(.tcp, { () throws(WireError) in
            try TCPSegmentView(validating: ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: verify)
        }) else {
            counters.tcp.inErrors &+= 1
            return
        }
        counters.tcp.segmentsReceived &+= 1
        // RFC 1122 §4.2.3.10: no TCP to or from broadcast or multicast addresses.
        if broadcast || ip.source.isBroadcast || ip.source.isMulticast || ip.source.isUnspecified
            || view.sourcePort == 0 || view.destinationPort == 0 {
            counters.tcp.inErrors &+= 1
            return
        }
        let remote = SocketAddress(ip.source, view.sourcePort)
        let localPort = view.destinationPort
        let segment = TCPSegment(view)
        if let block = tcp.connections[TCPFlowKey(localPort: localPort, remote: remote)] {
            // No retain: the table holds it, and nothing removes it while we hold the lock
            // except its own processing (which defers the release to the graveyard).
            let reused = block._withUnsafeGuaranteedRef { b -> Bool in
                // A new SYN beyond the old connection's sequence space ends its TIME-WAIT
                // and goes to the listener (RFC 6191's rule without timestamps, as Linux).
                if segment.flags.contains(.syn), !segment.flags.contains(.ack), tcp.listeners[localPort] != nil,
                   b.state == .timeWait, let next = b.connection?.rcvNxt, segment.sequenceNumber > next {
                    b.leaveTable()
                    return true
                }
                b.segmentArrived(segment, now: now)
                return false
            }
            if !reused { return }
        }
        if let listener = tcp.listeners[localPort] {
            listener._withUnsafeGuaranteedRef { $0.segmentArrived(segment, from: remote, now: now) }
            return
        }
        counters.tcp.noPorts &+= 1
        sendTCPReset(answering: segment, localPort: localPort, remote: remote, now: now)
    }

    /// The RST for a segment nobody takes (never for a RST).
    func sendTCPReset(answering segment: TCPSegment, localPort: UInt16, remote: SocketAddress, now: Int64) {
        // The link shared with a forked sibling: an unknown segment (not a SYN) may be one
        // of the sibling's connections, steered here by the device: dropped, never reset.
        if sharedLink.load(ordering: .relaxed) && !segment.flags.contains(.syn) { return }
        guard let rst = TCPConnection.reset(answering: segment) else { return }
        transmitTCP(rst, localPort: localPort, remote: remote, now: now) { _ in }
    }

    /// An ICMP destination unreachable quoting one of our TCP segments.
    func reportTCPUnreachable(_ code: ICMPUnreachableCode, localPort: UInt16, remote: SocketAddress, now: Int64) {
        guard let block = tcp.connections[TCPFlowKey(localPort: localPort, remote: remote)] else { return }
        block._withUnsafeGuaranteedRef { $0.unreachable(code, now: now) }
    }

    // MARK: output (lock held)

    /// Builds `segment` in a pool frame (header, options, the payload `payload` copies in)
    /// and hands it to IPv4. False (counted) when there is no buffer or it does not fit.
    @discardableResult
    func transmitTCP(_ segment: TCPOutgoingSegment, localPort: UInt16, remote: SocketAddress, now: Int64,
                     payload: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        let header = segment.header(sourcePort: localPort, destinationPort: remote.port)
        let headerLength = header.length
        let length = transportOffset + headerLength + segment.payloadLength
        guard length <= pool.frameCapacity,
              length - ethernetHeaderLength <= configuration.mtu
                || length - ethernetHeaderLength - IPv4Header.length - headerLength <= tcpSegmentationPayload else {
            counters.tcp.outDiscards &+= 1
            return false
        }
        guard var frame = pool.allocate() else {
            counters.ipv4.outDiscards &+= 1
            counters.tcp.outDiscards &+= 1
            return false
        }
        do { try frame.setLength(length) } catch { return false }
        let out = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: length)
        if segment.payloadLength > 0 {
            payload(UnsafeMutableRawBufferPointer(start: out.baseAddress! + transportOffset + headerLength, count: segment.payloadLength))
        }
        do {
            try header.emit(into: UnsafeMutableRawBufferPointer(start: out.baseAddress! + transportOffset, count: length - transportOffset),
                            source: address, destination: remote.address, payloadLength: segment.payloadLength,
                            computeChecksum: computeUDPChecksums, partialChecksum: partialTCPChecksums)
        } catch {
            counters.tcp.outDiscards &+= 1
            return false
        }
        counters.tcp.segmentsSent &+= 1
        if segment.flags.contains(.rst) { counters.tcp.resetsSent &+= 1 }
        switch outputIPv4(frame, to: remote.address, protocol: .tcp, payloadLength: headerLength + segment.payloadLength, now: now) {
        case .sent, .queued: return true
        case .noRoute, .queueFull: return false
        }
    }
}
