// InterfaceConfiguration.swift: what an interface is configured with (MAC, IPv4 address
// and prefix, gateway, MTU), CIDR parsing, and NetStackError, the stack's typed error.

/// An IPv4 address with a prefix length ("10.0.0.2/24").
public struct IPv4CIDR: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    /// 0 to 32.
    public var prefixLength: Int

    public init(address: IPv4Address, prefixLength: Int) throws(NetStackError) {
        guard (0...32).contains(prefixLength) else {
            throw .invalidConfiguration("prefix length \(prefixLength) is not between 0 and 32")
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `A.B.C.D/NN`; every malformed string is an ``NetStackError/invalidConfiguration(_:)``.
    public init(parsing text: String) throws(NetStackError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalidConfiguration("'\(text)' is not A.B.C.D/NN") }
        guard let address = IPv4Address(String(parts[0])) else {
            throw .invalidConfiguration("'\(parts[0])' in '\(text)' is not an IPv4 address")
        }
        guard let prefix = Int(parts[1]), (0...32).contains(prefix), parts[1].allSatisfy(\.isASCII) else {
            throw .invalidConfiguration("'\(parts[1])' in '\(text)' is not a prefix length from 0 to 32")
        }
        try self.init(address: address, prefixLength: prefix)
    }

    /// The netmask as a host-order integer.
    public var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength) }
    public var network: IPv4Address { IPv4Address(rawValue: address.rawValue & mask) }
    /// The subnet's directed broadcast address (none for /31 and /32, RFC 3021).
    public var broadcast: IPv4Address? {
        prefixLength >= 31 ? nil : IPv4Address(rawValue: address.rawValue | ~mask)
    }

    /// Whether `other` is in this subnet.
    @inline(__always)
    public func contains(_ other: IPv4Address) -> Bool { other.rawValue & mask == address.rawValue & mask }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// How an interface is set up.
public struct InterfaceConfiguration: Sendable, Equatable {
    /// This end's Ethernet address (the device's, normally).
    public var mac: MACAddress
    /// This end's address and the on-link subnet.
    public var address: IPv4CIDR
    /// Where packets for addresses off the subnet go; none means they are unreachable.
    public var gateway: IPv4Address?
    /// Largest IP packet sent (at most the device's).
    public var mtu: Int
    /// Datagrams queued per UDP socket before new ones are dropped (counted).
    public var udpReceiveQueueLength: Int = 256
    /// ARP behaviour.
    public var arp = ARPConfiguration()
    /// ICMP errors sent per second at most (token bucket, burst of 50); Linux's
    /// `icmp_ratelimit` is similar in spirit.
    public var icmpErrorsPerSecond: Int = 1000

    /// An instance's in-stack loopback (over NICQueues' loopback device): 127.0.0.0/8
    /// addresses are allowed.
    public var isLoopback = false

    public init(mac: MACAddress, address: IPv4CIDR, gateway: IPv4Address? = nil, mtu: Int = 1500) {
        self.mac = mac
        self.address = address
        self.gateway = gateway
        self.mtu = mtu
    }

    /// Checks the values an interface cannot work with.
    func validate() throws(NetStackError) {
        guard mac.isUnicast, mac != .zero else { throw .invalidConfiguration("MAC \(mac) is not a unicast address") }
        let a = address.address
        guard !a.isUnspecified, !a.isBroadcast, !a.isMulticast, !a.isLoopback || isLoopback else {
            throw .invalidConfiguration("\(a) cannot be an interface address")
        }
        if let b = address.broadcast, b == a { throw .invalidConfiguration("\(a) is the broadcast address of \(address)") }
        if let g = gateway {
            guard address.contains(g), g != a else {
                throw .invalidConfiguration("gateway \(g) is not another address on \(address.network)/\(address.prefixLength)")
            }
        }
        guard mtu >= 68, mtu <= 9000 else { throw .invalidConfiguration("MTU \(mtu) is not between 68 and 9000") }
        guard udpReceiveQueueLength >= 1, udpReceiveQueueLength <= 65536 else {
            throw .invalidConfiguration("UDP receive queue length \(udpReceiveQueueLength)")
        }
        try arp.validate()
        guard icmpErrorsPerSecond >= 0 else { throw .invalidConfiguration("ICMP error rate \(icmpErrorsPerSecond)") }
    }
}

/// A NetStack failure above the Wire layer. `description` is a sentence for the user.
public enum NetStackError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration value the stack cannot use (address, prefix, gateway, MTU, limits).
    case invalidConfiguration(String)
    /// The device failed (its own error text).
    case device(String)
    /// Starting the poller on the runtime failed.
    case runtime(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): "invalid network configuration: \(s)"
        case .device(let s): "network device: \(s)"
        case .runtime(let s): "network poller: \(s)"
        }
    }
}
