// InterfaceCounters.swift: per-protocol counters of an interface, named after Linux's
// /proc/net/snmp fields and printed the way `netstat -s` prints them.

/// Counts of one interface. Parse refusals are in `wire` (per layer and reason), ARP's in
/// `arp`, reassembly's in `reassembly`.
public struct InterfaceCounters: Sendable, Equatable {
    public struct Ethernet: Sendable, Equatable {
        public var framesReceived: UInt64 = 0
        public var framesSent: UInt64 = 0
        /// Addressed to another station (unicast not ours, or multicast).
        public var notForUs: UInt64 = 0
        /// EtherTypes we do not speak (IPv6, VLAN-tagged frames, ...).
        public var unknownEtherType: UInt64 = 0
    }
    public struct IPv4: Sendable, Equatable {
        /// `InReceives`: packets that passed the header checks.
        public var received: UInt64 = 0
        /// `InAddrErrors`: for an address that is not ours (we do not forward).
        public var addressErrors: UInt64 = 0
        /// `InUnknownProtos`.
        public var unknownProtocols: UInt64 = 0
        /// `InDelivers`: handed to ICMP or UDP.
        public var delivered: UInt64 = 0
        /// `OutRequests`.
        public var sent: UInt64 = 0
        /// `OutNoRoutes`: off-link with no gateway.
        public var noRoute: UInt64 = 0
        /// `OutDiscards`: no buffer, or the transmit queue full.
        public var outDiscards: UInt64 = 0
        /// Reassembled datagrams larger than a packet buffer, dropped.
        public var reassembledTooLarge: UInt64 = 0
    }
    public struct ICMP: Sendable, Equatable {
        public var received: UInt64 = 0
        public var echoRequestsReceived: UInt64 = 0
        public var echoRepliesReceived: UInt64 = 0
        public var unreachableReceived: UInt64 = 0
        /// Valid messages of types we ignore (time exceeded, echo to a broadcast address...).
        public var ignored: UInt64 = 0
        public var sent: UInt64 = 0
        public var echoRepliesSent: UInt64 = 0
        public var unreachableSent: UInt64 = 0
        /// Errors not sent because of the rate limit.
        public var rateLimited: UInt64 = 0
    }
    public struct UDP: Sendable, Equatable {
        /// `InDatagrams`: queued on a socket.
        public var received: UInt64 = 0
        /// `NoPorts`: no socket on the port (answered with port unreachable when unicast).
        public var noPorts: UInt64 = 0
        /// `RcvbufErrors`: the socket's receive queue was full.
        public var receiveQueueFull: UInt64 = 0
        /// `OutDatagrams`.
        public var sent: UInt64 = 0
    }
    public struct TCP: Sendable, Equatable {
        /// `ActiveOpens`: connects started.
        public var activeOpens: UInt64 = 0
        /// `PassiveOpens`: children made by listeners (cookie ones included).
        public var passiveOpens: UInt64 = 0
        /// `InSegs`: segments that passed the checks.
        public var segmentsReceived: UInt64 = 0
        /// `OutSegs`.
        public var segmentsSent: UInt64 = 0
        /// `InErrs`: bad checksums and malformed headers (by reason in `wire`), and
        /// segments to or from broadcast addresses or port 0.
        public var inErrors: UInt64 = 0
        /// `OutRsts`.
        public var resetsSent: UInt64 = 0
        /// Segments for no connection and no listener (answered with RST).
        public var noPorts: UInt64 = 0
        /// `ListenOverflows`: SYNs or cookie ACKs dropped because the accept queue was full.
        public var listenOverflows: UInt64 = 0
        /// `SyncookiesSent`, `SyncookiesRecv`, `SyncookiesFailed`.
        public var synCookiesSent: UInt64 = 0
        public var synCookiesAccepted: UInt64 = 0
        public var synCookiesFailed: UInt64 = 0
        /// Segments not sent: no buffer, or larger than a frame.
        public var outDiscards: UInt64 = 0
    }
    public var ethernet = Ethernet()
    public var ipv4 = IPv4()
    public var icmp = ICMP()
    public var udp = UDP()
    public var tcp = TCP()
    public var arp = ARPCounters()
    public var wire = WireCounters()
    public var reassembly = ReassemblyCounters()

    public init() {}

    public static func == (a: InterfaceCounters, b: InterfaceCounters) -> Bool {
        a.ethernet == b.ethernet && a.ipv4 == b.ipv4 && a.icmp == b.icmp && a.udp == b.udp && a.tcp == b.tcp && a.arp == b.arp && a.wire == b.wire
    }

    /// Every counter, one per line, grouped as `netstat -s` groups them.
    public var description: String {
        var s = "Ethernet:\n"
        s += "    \(ethernet.framesReceived) frames received\n    \(ethernet.framesSent) frames sent\n"
        s += "    \(ethernet.notForUs) not for us\n    \(ethernet.unknownEtherType) with unknown EtherType\n"
        s += "ARP:\n"
        s += "    \(arp.requestsSent) requests sent\n    \(arp.requestsReceived) requests received\n"
        s += "    \(arp.repliesSent) replies sent\n    \(arp.repliesReceived) replies received\n"
        s += "    \(arp.gratuitousSent) gratuitous sent\n    \(arp.resolutionFailures) resolution failures\n"
        s += "    \(arp.expired) entries expired\n    \(arp.evicted) entries evicted\n"
        s += "    \(arp.pendingDropped) queued packets dropped\n"
        s += "Ip:\n"
        s += "    \(ipv4.received) total packets received\n    \(ipv4.addressErrors) with invalid addresses\n"
        s += "    \(ipv4.unknownProtocols) with unknown protocol\n    \(ipv4.delivered) incoming packets delivered\n"
        s += "    \(ipv4.sent) requests sent out\n    \(ipv4.noRoute) dropped because of missing route\n"
        s += "    \(ipv4.outDiscards) outgoing packets dropped\n"
        s += "    \(reassembly.fragments) fragments received\n    \(reassembly.reassembled) reassembled ok\n"
        s += "    \(reassembly.dropped) fragments dropped\n    \(ipv4.reassembledTooLarge) reassembled too large\n"
        s += "Icmp:\n"
        s += "    \(icmp.received) ICMP messages received\n    \(icmp.echoRequestsReceived) echo requests received\n"
        s += "    \(icmp.echoRepliesReceived) echo replies received\n    \(icmp.unreachableReceived) destination unreachable received\n"
        s += "    \(icmp.ignored) ignored\n    \(icmp.sent) ICMP messages sent\n    \(icmp.echoRepliesSent) echo replies sent\n"
        s += "    \(icmp.unreachableSent) destination unreachable sent\n    \(icmp.rateLimited) not sent (rate limit)\n"
        s += "Udp:\n"
        s += "    \(udp.received) packets received\n    \(udp.noPorts) packets to unknown port received\n"
        s += "    \(udp.receiveQueueFull) receive buffer errors\n    \(udp.sent) packets sent\n"
        s += "Tcp:\n"
        s += "    \(tcp.activeOpens) active connection openings\n    \(tcp.passiveOpens) passive connection openings\n"
        s += "    \(tcp.segmentsReceived) segments received\n    \(tcp.segmentsSent) segments sent out\n"
        s += "    \(tcp.inErrors) bad segments received\n    \(tcp.resetsSent) resets sent\n"
        s += "    \(tcp.noPorts) segments for no connection\n    \(tcp.listenOverflows) listen queue overflows\n"
        s += "    \(tcp.synCookiesSent) SYN cookies sent\n    \(tcp.synCookiesAccepted) SYN cookies accepted\n"
        s += "    \(tcp.synCookiesFailed) SYN cookies failed\n    \(tcp.outDiscards) segments not sent\n"
        let w = wire.description
        if !w.isEmpty { s += "Refused:\n" + w.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\n" }
        return s
    }
}
