// NetworkInterface.swift: one IPv4 interface over a NICQueues device: its state (ARP
// cache, packets awaiting resolution, UDP port table, TCP demultiplexing, counters), the
// receive batch loop and the timers. Input is IPv4Input.swift, output IPv4Output.swift, the poller Poller.swift.
import NICQueuesCore
import Synchronization
import UThreads

// Tunables.
/// Frames taken from the device per receive call (one scheduler poll).
let receiveBatchSize = 32
/// Frames the transmit batch holds before a send finds it full (drops counted).
let transmitBatchCapacity = 512
/// Timer granularity: ARP retries and expiry, reassembly timeouts (ARP retries are 1 s).
let timerInterval: Int64 = 50_000_000
/// Linux's default ephemeral port range (`ip_local_port_range`).
let ephemeralPorts: ClosedRange<UInt16> = 32768...60999

/// An IPv4 interface over one NICQueues device: ARP, IPv4 (no forwarding), ICMP echo and
/// errors, UDP demultiplexing to ``UDPSocket``s, TCP to ``TCPSocket``s and
/// ``TCPListener``s.
///
/// TCP: connections are found by their 4-tuple in a hash table, listeners by port (TCP's
/// port space is apart from UDP's, as in Linux); a segment for neither is answered with
/// RST. Each connection's next deadline (retransmission, delayed ACK, persist, keepalive,
/// TIME_WAIT) sits in a min-heap; the poller runs the due ones, and the timer uthread
/// sleeps until the earliest (at most 50 ms). A connection the application closed stays
/// in the table until its FIN exchange and TIME_WAIT are over.
///
/// All state is behind one spin lock: the poller of each device queue (a UThreads poll
/// hook, see ``start(on:)``) and sending uthreads take it for the few microseconds a
/// batch takes, and never park while holding it. Nothing on the per-packet path
/// allocates: frames stay in pool buffers from the device to the socket's queue.
public final class NetworkInterface: @unchecked Sendable {
    public let configuration: InterfaceConfiguration
    public let clock: InterfaceClock
    /// The device, reached once per batch.
    let link: any FrameLink
    let pool: PacketPool
    let queueCount: Int
    let lock = SpinLock()
    /// Skip checksums: the device verifies them, or frames never leave memory.
    let verifyChecksums: Bool
    let computeUDPChecksums: Bool
    /// The device completes TCP checksums: we write the pseudo-header sum only.
    let partialTCPChecksums: Bool
    /// Largest TCP payload of one segment the device cuts at the MTU (TSO); 0 without.
    let tcpSegmentationPayload: Int
    /// Largest UDP payload one packet carries (we do not fragment on output).
    public let maximumUDPPayload: Int

    // Guarded by `lock`.
    @exclusivity(unchecked) var arp: ARPCache
    @exclusivity(unchecked) var pending: ARPPendingQueue
    @exclusivity(unchecked) var tx: PacketBatch
    @exclusivity(unchecked) var rx: PacketBatch
    @exclusivity(unchecked) var counters = InterfaceCounters()
    @exclusivity(unchecked) var reassembler = IPv4Reassembler()
    /// UDP sockets by local port, unretained (a socket removes itself before it goes).
    let udpPorts: UnsafeMutablePointer<Unmanaged<UDPSocket>?>
    @exclusivity(unchecked) var nextEphemeral: UInt16
    @exclusivity(unchecked) var ipIdentification: UInt16 = 1
    @exclusivity(unchecked) var icmpTokens: Double = 50
    @exclusivity(unchecked) var icmpRefilled: Int64 = 0
    @exclusivity(unchecked) var nextTimer: Int64 = 0
    @exclusivity(unchecked) var deviceError: NICError?
    /// The loopback's local delivery is running (frames it makes join its loop).
    @exclusivity(unchecked) var deliveringLocally = false
    /// TCP connections, listeners, ports and timers (TCPDemux.swift).
    @exclusivity(unchecked) var tcp = TCPDemux()
    /// The timer uthread, parked until `timerWakeAt` (unparked for an earlier TCP deadline).
    @exclusivity(unchecked) var timerWaker: UThreadRef?
    @exclusivity(unchecked) var timerWakeAt: Int64 = .max

    // Poller state (Poller.swift).
    @exclusivity(unchecked) var hooks: [PollHookToken] = []
    @exclusivity(unchecked) var timerThread: JoinHandle<Void>?
    @exclusivity(unchecked) weak var runtime: Runtime?
    let running = Atomic<Bool>(false)
    let linkDown = Atomic<Bool>(false)

    /// An interface over `link`; nothing is sent until ``start(on:)`` or ``announce(now:)``.
    /// - Parameters:
    ///   - link: the device (or a test double) frames go out on and come in from.
    ///   - configuration: the MTU is lowered to the device's if it is larger.
    ///   - clock: where protocol time comes from (ARP, reassembly, ICMP rate limit).
    public init(link: any FrameLink, configuration: InterfaceConfiguration,
                clock: InterfaceClock = .monotonic) throws(NetStackError) {
        self.clock = clock
        var c = configuration
        let info = link.linkInfo
        c.mtu = min(c.mtu, info.mtu)
        try c.validate()
        self.configuration = c
        self.link = link
        pool = link.linkPool
        queueCount = info.queueCount
        let skip = info.offloads.contains(.checksumNotNeeded)
        verifyChecksums = !skip && !info.offloads.contains(.rxChecksum)
        computeUDPChecksums = !skip
        partialTCPChecksums = !skip && info.offloads.contains(.txChecksum)
        // Only at the device's own MTU: it cuts there, and our MSS comes from ours.
        if info.offloads.contains(.tcpSegmentation) && c.mtu == info.mtu {
            let frame = min(info.segmentationLimit, pool.frameCapacity, ethernetHeaderLength + 65535)
            tcpSegmentationPayload = max(frame - ethernetHeaderLength - IPv4Header.length - TCPHeader.minimumLength - TCPOptions.maximumLength, 0)
        } else {
            tcpSegmentationPayload = 0
        }
        maximumUDPPayload = min(c.mtu, pool.frameCapacity - ethernetHeaderLength) - IPv4Header.length - UDPHeader.length
        guard maximumUDPPayload >= 8 else {
            throw .invalidConfiguration("the device's buffers (\(pool.frameCapacity) bytes) are too small for IPv4")
        }
        arp = ARPCache(configuration: c.arp)
        pending = ARPPendingQueue(total: c.arp.pendingTotal, perNeighbour: c.arp.pendingPerNeighbour)
        tx = PacketBatch(capacity: transmitBatchCapacity)
        rx = PacketBatch(capacity: receiveBatchSize)
        udpPorts = .allocate(capacity: 65536)
        udpPorts.initialize(repeating: nil, count: 65536)
        nextEphemeral = UInt16.random(in: ephemeralPorts)
    }

    /// An interface over any NICQueues device (wrapped in a `SharedDevice`).
    public convenience init<Device: NetworkDevice & ~Copyable>(device: consuming Device, configuration: InterfaceConfiguration,
                                                               clock: InterfaceClock = .monotonic) throws(NetStackError) {
        try self.init(link: SharedDevice(device), configuration: configuration, clock: clock)
    }

    deinit {
        stop()
        // Buffers go back before the pool can go (stored properties are released in no
        // promised order, and a pool dropped with buffers out keeps its memory mapped).
        tx.removeAll()
        rx.removeAll()
        pending.removeAll()
        udpPorts.deallocate()
        // Connections still in the table (the application let go of the interface first).
        for e in tcp.timers.unordered {
            let b = e.block.takeUnretainedValue()
            b.timerEntries -= 1
            if b.retired && b.timerEntries == 0 { e.block.release() }
        }
        for (_, u) in tcp.connections { u.release() }
        for u in tcp.graveyard { u.release() }
        tcp.deallocate()
    }

    /// The interface's address.
    public var address: IPv4Address { configuration.address.address }

    /// A snapshot of the counters.
    public var statistics: InterfaceCounters {
        lock.withLock {
            var c = counters
            // The cache counts its own timers; the interface counts packets.
            let cache = arp.counters
            c.arp.requestsSent = cache.requestsSent
            c.arp.resolutionFailures = cache.resolutionFailures
            c.arp.expired = cache.expired
            c.arp.evicted = cache.evicted
            c.reassembly = reassembler.counters
            return c
        }
    }

    /// The device's own counters.
    public var deviceInfo: DeviceInfo { link.linkInfo }

    /// The first device failure the poller met (the poller keeps going; a dead shm peer
    /// shows up here as `peerGone`).
    public var lastDeviceError: NICError? { lock.withLock { deviceError } }

    /// The neighbour table's answer for `ip` now (for tests and diagnostics).
    public func neighbour(_ ip: IPv4Address) -> MACAddress? {
        lock.withLock { arp.resolved(ip, now: clock.now) }
    }

    /// Copies `other`'s resolved neighbours into this interface's table (a forked child's
    /// interface on the same link starts with what its parent knew: a reply to its own
    /// request may be steered to the parent's queue).
    public func learnNeighbours(from other: NetworkInterface) {
        let known = other.lock.withLock { other.arp.resolvedEntries }
        let now = clock.now
        lock.withLock { for (ip, mac) in known { _ = arp.update(ip, mac: mac, now: now, create: true) } }
    }

    /// Set when another process's interface shares the link (one queue each of a
    /// multi-queue TAP after a fork): a segment of a connection this interface does not
    /// know may be a sibling's, steered here by the device, so it is dropped rather than
    /// answered with RST. (A SYN to a port nobody listens on here is still answered.)
    public var sharesLink: Bool {
        get { sharedLink.load(ordering: .relaxed) }
        set { sharedLink.store(newValue, ordering: .relaxed) }
    }
    let sharedLink = Atomic<Bool>(false)

    /// Called (lock held) with the address an ARP request of ours asks for, before it goes
    /// out: on a steered TAP the reply then comes to this process's queue. Set before
    /// ``start(on:)``.
    @exclusivity(unchecked) public var willResolve: (@Sendable (IPv4Address) -> Void)?

    // MARK: processing

    /// Receives one batch from `queue`, processes it, runs due timers and transmits what
    /// that produced. Returns the frames received. Call from one thread per queue (the
    /// poller does); `now` is CLOCK_MONOTONIC nanoseconds, or a test's manual clock.
    @discardableResult
    public func poll(queue: Int = 0, now: Int64) -> Int {
        lock.lock()
        var n = 0
        do {
            n = try link.receive(queue: queue, into: &rx, limit: receiveBatchSize)
        } catch {
            if deviceError == nil { deviceError = error }
        }
        while let frame = rx.popFirst() { input(frame, now: now) }
        if now >= nextTimer { runTimers(now: now) }
        if let d = tcp.earliestDeadline, d <= now { runTCPTimers(now: now) }
        flush()
        _ = try? link.reclaim(queue: queue)
        let bury = !tcp.graveyard.isEmpty
        lock.unlock()
        if bury { tcpBury() }
        return n
    }

    /// ``poll(queue:now:)`` at the interface's clock.
    @discardableResult
    public func poll(queue: Int = 0) -> Int { poll(queue: queue, now: clock.now) }

    /// Runs the timers now (ARP retries and expiry, reassembly timeouts, the TCP timers
    /// that are due) and transmits.
    public func tick(now: Int64) {
        lock.withLock {
            runTimers(now: now)
            runTCPTimers(now: now)
            flush()
        }
        tcpBury()
    }

    /// Sends the gratuitous ARP announcements the configuration asks for (RFC 5227 §2.3:
    /// an ARP request with our address as sender and target).
    public func announce(now: Int64) {
        lock.withLock {
            for _ in 0..<configuration.arp.gratuitousAnnouncements {
                if sendARP(.request, to: .broadcast, targetMAC: .zero, targetIP: address) {
                    counters.arp.gratuitousSent &+= 1
                }
            }
            flush()
        }
    }

    func runTimers(now: Int64) {
        nextTimer = now &+ timerInterval
        arp.expire(now: now, retry: { ip, known in
            // Resolving: broadcast. Probing a stale entry: unicast to the address we have.
            _ = sendARP(.request, to: known ?? .broadcast, targetMAC: known ?? .zero, targetIP: ip)
        }, failed: { ip in
            counters.arp.pendingDropped &+= UInt64(pending.drop(for: ip))
        })
        reassembler.expire(now: now)
    }

    /// Transmits the transmit batch; what the device does not take stays for the next call.
    func flush() {
        if configuration.isLoopback { deliverLocally(); return }
        var stalls = 0
        while !tx.isEmpty {
            let n: Int
            do { n = try link.transmit(queue: 0, from: &tx) } catch {
                if deviceError == nil { deviceError = error }
                counters.ipv4.outDiscards &+= UInt64(tx.count)
                tx.removeAll()
                return
            }
            if n == 0 {
                _ = try? link.reclaim(queue: 0)
                stalls += 1
                if stalls > 2 { return }
            }
        }
    }

    /// The in-stack loopback: what we transmit is received at once, in the sender's call
    /// (as Linux's loopback delivers before send returns), so data written is readable when
    /// the write returns; the replies it causes (ACKs) go the same way. Lock held.
    func deliverLocally() {
        if deliveringLocally { return }   // the outer loop takes what input queued
        deliveringLocally = true
        let now = clock.now
        while let frame = tx.popFirst() { input(frame, now: now) }
        deliveringLocally = false
    }

    /// Queues a complete frame for transmission; false (and counted) when the batch is full.
    @discardableResult
    func enqueueTransmit(_ frame: consuming PacketBuffer) -> Bool {
        if tx.isFull { flush() }
        if tx.isFull {
            counters.ipv4.outDiscards &+= 1
            return false
        }
        tx.append(frame)
        counters.ethernet.framesSent &+= 1
        return true
    }

    // MARK: ARP

    /// Builds and queues an ARP packet from us. False when no buffer or queue room.
    @discardableResult
    func sendARP(_ op: ARPOperation, to destination: MACAddress, targetMAC: MACAddress, targetIP: IPv4Address) -> Bool {
        guard var frame = pool.allocate() else { counters.ipv4.outDiscards &+= 1; return false }
        let length = ethernetHeaderLength + ARPPacket.length
        do { try frame.setLength(max(length, 60)) } catch { return false }   // padded to the Ethernet minimum
        let bytes = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: frame.length)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        let ok: Bool
        do {
            try EthernetHeader(destination: destination, source: configuration.mac, etherType: .arp).emit(into: bytes)
            try ARPPacket(operation: op, senderHardwareAddress: configuration.mac, senderProtocolAddress: address,
                          targetHardwareAddress: targetMAC, targetProtocolAddress: targetIP)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: bytes[ethernetHeaderLength...]))
            ok = true
        } catch { ok = false }
        guard ok else { return false }
        if op == .reply { counters.arp.repliesSent &+= 1 }
        if op == .request, targetIP != address, let willResolve { willResolve(targetIP) }
        return enqueueTransmit(frame)
    }

    func inputARP(_ bytes: UnsafeRawBufferPointer, now: Int64) {
        guard let packet = counters.wire.counting(.arp, { () throws(WireError) in try ARPPacketView(validating: bytes) }) else { return }
        let senderIP = packet.senderProtocolAddress, senderMAC = packet.senderHardwareAddress
        let forUs = packet.targetProtocolAddress == address
        if packet.operation == .request { counters.arp.requestsReceived &+= 1 } else { counters.arp.repliesReceived &+= 1 }
        if senderIP == address { return }   // someone else claims our address (or our own echo)
        // RFC 826: update an entry we have; add one when the packet is for us.
        if arp.update(senderIP, mac: senderMAC, now: now, create: forUs) {
            releasePending(for: senderIP, mac: senderMAC)
        }
        if packet.operation == .request && forUs {
            sendARP(.reply, to: senderMAC, targetMAC: senderMAC, targetIP: senderIP)
        }
    }

    /// Sends the packets that waited for `ip`, now at `mac`.
    func releasePending(for ip: IPv4Address, mac: MACAddress) {
        let source = configuration.mac
        pending.take(for: ip) { frame in
            let header = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: ethernetHeaderLength)
            _ = try? EthernetHeader(destination: mac, source: source, etherType: .ipv4).emit(into: header)
            enqueueTransmit(frame)
        }
    }
}

/// Where an interface's protocol time comes from.
public enum InterfaceClock: Sendable {
    /// CLOCK_MONOTONIC (the runtime's clock).
    case monotonic
    /// A clock a test moves by hand.
    case manual(ManualClock)

    /// Nanoseconds.
    @inline(__always)
    public var now: Int64 {
        switch self {
        case .monotonic: MonotonicInstant.now.nanoseconds
        case .manual(let c): c.now
        }
    }
}

/// A clock that moves only when told (tests of timers).
public final class ManualClock: Sendable {
    private let nanoseconds: Atomic<Int64>
    public init(_ start: Duration = .seconds(1000)) { nanoseconds = Atomic(start.nanosecondsSaturated) }
    public var now: Int64 { nanoseconds.load(ordering: .acquiring) }
    public func advance(by d: Duration) { nanoseconds.add(d.nanosecondsSaturated, ordering: .acquiringAndReleasing) }
}
