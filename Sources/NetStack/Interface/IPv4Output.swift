// IPv4Output.swift: the transmit path: routing (on-link or the gateway), the IPv4 and
// Ethernet headers, ARP resolution or queueing, ICMP echo replies and rate-limited errors.
import NICQueuesCore

/// Where a packet goes next.
enum NextHop: Equatable {
    case neighbour(IPv4Address)
    case broadcast
}

/// Offsets of a frame we build: Ethernet, a 20-byte IPv4 header, the transport header.
let ipv4HeaderOffset = ethernetHeaderLength
let transportOffset = ethernetHeaderLength + IPv4Header.length

extension NetworkInterface {
    /// The next hop for `destination`, or nil when it is off-link and there is no gateway.
    func route(_ destination: IPv4Address) -> NextHop? {
        let subnet = configuration.address
        if destination.isBroadcast || destination == subnet.broadcast { return .broadcast }
        if subnet.contains(destination) { return .neighbour(destination) }
        if let gateway = configuration.gateway { return .neighbour(gateway) }
        return nil
    }

    /// Writes the IPv4 header in front of the `payloadLength` transport bytes already at
    /// `transportOffset`, then the Ethernet header, and sends the frame or queues it for
    /// ARP. The frame's length must be `transportOffset + payloadLength`.
    /// - Returns: sent, queued for ARP, or why not (no route, transmit batch full; counted).
    @discardableResult
    func outputIPv4(_ frame: consuming PacketBuffer, to destination: IPv4Address, protocol proto: IPProtocol,
                    payloadLength: Int, now: Int64) -> OutputResult {
        guard let hop = route(destination) else {
            counters.ipv4.noRoute &+= 1
            return .noRoute
        }
        let bytes = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: frame.length)
        ipIdentification &+= 1
        let header = IPv4Header(source: address, destination: destination, protocol: proto, payloadLength: payloadLength,
                                identification: ipIdentification)
        do { try header.emit(into: UnsafeMutableRawBufferPointer(rebasing: bytes[ipv4HeaderOffset...])) } catch {
            counters.ipv4.outDiscards &+= 1
            return .noRoute
        }
        counters.ipv4.sent &+= 1
        let mac: MACAddress
        switch hop {
        case .broadcast:
            mac = .broadcast
        case .neighbour(let ip):
            switch arp.lookup(ip, now: now) {
            case .resolved(let m):
                mac = m
            case .stale(let m):
                mac = m
                sendARP(.request, to: m, targetMAC: m, targetIP: ip)
            case .resolving(let sendRequest):
                if sendRequest { sendARP(.request, to: .broadcast, targetMAC: .zero, targetIP: ip) }
                counters.arp.pendingDropped &+= UInt64(pending.enqueue(frame, for: ip))
                return .queued
            }
        }
        _ = try? EthernetHeader(destination: mac, source: configuration.mac, etherType: .ipv4)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<ethernetHeaderLength]))
        return enqueueTransmit(frame) ? .sent : .queueFull
    }

    /// An echo reply carrying the request's data (RFC 792).
    func sendEchoReply(to destination: IPv4Address, identifier: UInt16, sequence: UInt16,
                       data: UnsafeRawBufferPointer, now: Int64) {
        let length = transportOffset + ICMPMessage.headerLength + data.count
        guard length <= ethernetHeaderLength + configuration.mtu, length <= pool.frameCapacity, var frame = pool.allocate() else {
            counters.ipv4.outDiscards &+= 1
            return
        }
        do { try frame.setLength(length) } catch { return }
        let out = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: length)
        let icmp = UnsafeMutableRawBufferPointer(rebasing: out[transportOffset...])
        UnsafeMutableRawBufferPointer(rebasing: icmp[ICMPMessage.headerLength...]).copyMemory(from: data)
        do { try ICMPMessage.echoReply(identifier: identifier, sequence: sequence).emit(into: icmp, payloadLength: data.count) } catch { return }
        counters.icmp.sent &+= 1
        counters.icmp.echoRepliesSent &+= 1
        outputIPv4(frame, to: destination, protocol: .icmp, payloadLength: icmp.count, now: now)
    }

    /// An ICMP error about `original` (its header and as much data as fits 576 bytes),
    /// unless the rate limit says no. Never about an ICMP error, a fragment other than the
    /// first, or a packet from a broadcast or multicast source (RFC 1122 §3.2.2).
    func sendICMPError(_ message: ICMPMessage, quoting original: IPv4Packet, now: Int64) {
        if original.fragmentOffset != 0 || original.source.isBroadcast || original.source.isMulticast || original.source.isUnspecified { return }
        if original.protocol == .icmp, let type = original.payload.first, type != 0 && type != 8 { return }
        let rate = Double(configuration.icmpErrorsPerSecond)
        icmpTokens = min(50, icmpTokens + Double(max(0, now &- icmpRefilled)) * rate / 1e9)
        icmpRefilled = now
        guard icmpTokens >= 1 else { counters.icmp.rateLimited &+= 1; return }
        icmpTokens -= 1
        let quote = min(original.bytes.count, ICMPMessage.maximumErrorLength - IPv4Header.length - ICMPMessage.headerLength,
                        configuration.mtu - IPv4Header.length - ICMPMessage.headerLength)
        let length = transportOffset + ICMPMessage.headerLength + quote
        guard length <= pool.frameCapacity, var frame = pool.allocate() else { counters.ipv4.outDiscards &+= 1; return }
        do { try frame.setLength(length) } catch { return }
        let icmp = UnsafeMutableRawBufferPointer(start: frame.unsafeData + transportOffset, count: length - transportOffset)
        guard let n = try? message.emitError(quoting: original.bytes.slice(0, quote), into: icmp) else { return }
        counters.icmp.sent &+= 1
        if case .destinationUnreachable = message { counters.icmp.unreachableSent &+= 1 }
        outputIPv4(frame, to: original.source, protocol: .icmp, payloadLength: n, now: now)
    }
}

/// What became of a packet handed to the output path.
enum OutputResult: Equatable {
    case sent
    /// Waiting for ARP.
    case queued
    case noRoute
    /// The transmit batch was full: dropped.
    case queueFull
}
