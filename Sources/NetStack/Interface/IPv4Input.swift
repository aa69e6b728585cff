// IPv4Input.swift: the receive path: Ethernet demultiplexing, IPv4 checks and
// reassembly, ICMP (echo, errors for our UDP sockets and TCP connections), UDP delivery
// to sockets and TCP to the demultiplexer (TCPDemux.swift).
import NICQueuesCore

extension NetworkInterface {
    /// Processes one received frame; the buffer goes to a socket's queue or back to the pool.
    func input(_ frame: consuming PacketBuffer, now: Int64) {
        counters.ethernet.framesReceived &+= 1
        // The frame's bytes, valid while `frame` lives (it outlives every use below).
        let bytes = UnsafeRawBufferPointer(start: frame.unsafeData, count: frame.length)
        guard let eth = counters.wire.counting(.ethernet, { () throws(WireError) in try EthernetFrame(validating: bytes) }) else { return }
        let destination = eth.destination
        guard destination == configuration.mac || destination.isBroadcast else {
            counters.ethernet.notForUs &+= 1
            return
        }
        guard eth.tagCount == 0 else { counters.ethernet.unknownEtherType &+= 1; return }
        switch eth.etherType {
        case .arp:
            inputARP(eth.payload, now: now)
        case .ipv4:
            inputIPv4(frame, ipOffset: eth.headerLength, now: now)
        default:
            counters.ethernet.unknownEtherType &+= 1
        }
    }

    func inputIPv4(_ frame: consuming PacketBuffer, ipOffset: Int, now: Int64) {
        let all = UnsafeRawBufferPointer(start: frame.unsafeData, count: frame.length)
        let verify = verifyChecksums
        guard let ip = counters.wire.counting(.ipv4, { () throws(WireError) in
            try IPv4Packet(validating: all.slice(ipOffset, all.count), verifyChecksum: verify)
        }) else { return }
        counters.ipv4.received &+= 1
        let destination = ip.destination
        let broadcast = destination.isBroadcast || destination == configuration.address.broadcast
        guard destination == address || broadcast else {
            counters.ipv4.addressErrors &+= 1
            return
        }
        if ip.isFragment {
            switch reassembler.receive(ip, now: now) {
            case .complete(let datagram): inputReassembled(datagram, ethernet: all.slice(0, ethernetHeaderLength), now: now)
            case .incomplete, .dropped: break
            }
            return
        }
        switch ip.protocol {
        case .udp:
            counters.ipv4.delivered &+= 1
            inputUDP(frame, ip: ip, ipOffset: ipOffset, broadcast: broadcast, now: now)
        case .tcp:
            counters.ipv4.delivered &+= 1
            inputTCP(ip, broadcast: broadcast, now: now)
        case .icmp:
            counters.ipv4.delivered &+= 1
            inputICMP(ip, broadcast: broadcast, now: now)
        default:
            counters.ipv4.unknownProtocols &+= 1
            if !broadcast { sendICMPError(.destinationUnreachable(.protocol, nextHopMTU: 0), quoting: ip, now: now) }
        }
    }

    /// A reassembled datagram re-enters as one unfragmented packet in a fresh buffer, when
    /// it fits one (we hold datagrams in pool buffers); larger ones are counted and dropped.
    func inputReassembled(_ datagram: ReassembledDatagram, ethernet: UnsafeRawBufferPointer, now: Int64) {
        var header = datagram.header
        header.payloadLength = datagram.payload.count
        header.moreFragments = false
        header.fragmentOffset = 0
        let length = ethernetHeaderLength + IPv4Header.length + datagram.payload.count
        guard length <= pool.frameCapacity, var frame = pool.allocate() else {
            counters.ipv4.reassembledTooLarge &+= 1
            return
        }
        do { try frame.setLength(length) } catch { return }
        let out = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: length)
        out.copyMemory(from: ethernet)
        do { try header.emit(into: UnsafeMutableRawBufferPointer(rebasing: out[ethernetHeaderLength...])) } catch { return }
        datagram.payload.withUnsafeBytes { p in
            UnsafeMutableRawBufferPointer(rebasing: out[(ethernetHeaderLength + IPv4Header.length)...]).copyMemory(from: p)
        }
        counters.ipv4.received &-= 1   // counted once already, as its fragments
        inputIPv4(frame, ipOffset: ethernetHeaderLength, now: now)
    }

    func inputUDP(_ frame: consuming PacketBuffer, ip: IPv4Packet, ipOffset: Int, broadcast: Bool, now: Int64) {
        let verify = verifyChecksums
        guard let udp = counters.wire.counting(.udp, { () throws(WireError) in
            try UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: verify)
        }) else { return }
        let port = udp.destinationPort
        let from = SocketAddress(ip.source, udp.sourcePort)
        guard let socket = udpPorts[Int(port)], socket._withUnsafeGuaranteedRef({ $0.accepts(from: from) }) else {
            counters.udp.noPorts &+= 1
            if !broadcast { sendICMPError(.destinationUnreachable(.port, nextHopMTU: 0), quoting: ip, now: now) }
            return
        }
        let payloadOffset = ipOffset + ip.headerLength + UDPHeader.length
        let payloadLength = udp.length - UDPHeader.length
        do {
            try frame.trimFront(payloadOffset)
            try frame.setLength(payloadLength)
        } catch { return }
        var slot: PacketBuffer? = frame
        // No retain of the socket: it cannot go while we hold the lock (its close takes it).
        if socket._withUnsafeGuaranteedRef({ $0.deliver(slot.take()!, from: from) }) {
            counters.udp.received &+= 1
        } else {
            counters.udp.receiveQueueFull &+= 1
        }
    }

    func inputICMP(_ ip: IPv4Packet, broadcast: Bool, now: Int64) {
        let verify = verifyChecksums
        guard let packet = counters.wire.counting(.icmp, { () throws(WireError) in
            try ICMPPacket(validating: ip.payload, verifyChecksum: verify)
        }) else { return }
        guard let message = counters.wire.counting(.icmp, { () throws(WireError) in try ICMPMessage(packet) }) else { return }
        counters.icmp.received &+= 1
        switch message {
        case .echoRequest(let identifier, let sequence):
            counters.icmp.echoRequestsReceived &+= 1
            // Linux ignores echoes to broadcast addresses (icmp_echo_ignore_broadcasts).
            if broadcast { counters.icmp.ignored &+= 1; return }
            sendEchoReply(to: ip.source, identifier: identifier, sequence: sequence, data: packet.payload, now: now)
        case .echoReply:
            counters.icmp.echoRepliesReceived &+= 1
        case .destinationUnreachable(let code, _):
            counters.icmp.unreachableReceived &+= 1
            reportUnreachable(code, quote: packet.payload, now: now)
        case .timeExceeded:
            counters.icmp.ignored &+= 1
        }
    }

    /// Port (or host, network, protocol) unreachable for a datagram one of our connected
    /// UDP sockets sent: the socket's next call fails with `connectionRefused` (Linux sets
    /// `sk_err` on connected sockets only, RFC 1122 §4.1.3.3).
    func reportUnreachable(_ code: ICMPUnreachableCode, quote: UnsafeRawBufferPointer, now: Int64) {
        guard let quoted = try? IPv4Packet(validatingQuoted: quote), quoted.protocol == .udp || quoted.protocol == .tcp,
              quoted.source == address, quoted.payload.count >= 4 else {
            counters.icmp.ignored &+= 1
            return
        }
        if quoted.protocol == .tcp {
            // RFC 1122 §4.2.3.9 (the connection decides whether it is hard or soft).
            reportTCPUnreachable(code, localPort: quoted.payload.u16(0), remote: SocketAddress(quoted.destination, quoted.payload.u16(2)), now: now)
            return
        }
        let udp = quoted.payload
        let localPort = udp.u16(0), remotePort = udp.u16(2)
        guard let socket = udpPorts[Int(localPort)] else { return }
        let remote = SocketAddress(quoted.destination, remotePort)
        socket._withUnsafeGuaranteedRef { $0.reportError(code == .port ? .connectionRefused : .hostUnreachable(remote.address), from: remote) }
    }
}
