// NetlinkMessages.swift: the rtnetlink messages the instance's NETLINK_ROUTE socket
// answers with, laid out as Linux's rtnl_fill_ifinfo and inet_fill_ifaddr do
// (nlmsghdr, ifinfomsg/ifaddrmsg, 4-byte aligned rtattrs), plus NLMSG_DONE and
// NLMSG_ERROR (netlink_ack: the request's header, and its payload for an error).
import Glibc
import NetStack

/// Message types, flags and attribute numbers (include/uapi/linux/netlink.h, rtnetlink.h,
/// if_link.h, if_addr.h).
enum Netlink {
    static let NETLINK_ROUTE: Int32 = 0
    static let SOL_NETLINK: Int32 = 270
    static let headerLength = 16
    static let NLMSG_NOOP: UInt16 = 1, NLMSG_ERROR: UInt16 = 2, NLMSG_DONE: UInt16 = 3
    /// Types below this are control messages (netlink_rcv_skb acknowledges them only).
    static let NLMSG_MIN_TYPE: UInt16 = 0x10
    static let NLM_F_REQUEST: UInt16 = 0x1, NLM_F_MULTI: UInt16 = 0x2, NLM_F_ACK: UInt16 = 0x4
    static let NLM_F_DUMP: UInt16 = 0x300, NLM_F_CAPPED: UInt16 = 0x100
    static let RTM_NEWLINK: UInt16 = 16, RTM_GETLINK: UInt16 = 18
    static let RTM_NEWADDR: UInt16 = 20, RTM_GETADDR: UInt16 = 22
    /// ((__RTM_MAX + 3) & ~3) - 1 with RTM_GETTUNNEL (122) the last type.
    static let RTM_MAX: UInt16 = 123
    static let IFLA_ADDRESS: UInt16 = 1, IFLA_BROADCAST: UInt16 = 2, IFLA_IFNAME: UInt16 = 3
    static let IFLA_MTU: UInt16 = 4, IFLA_STATS: UInt16 = 7, IFLA_TXQLEN: UInt16 = 13
    static let IFLA_OPERSTATE: UInt16 = 16, IFLA_LINKMODE: UInt16 = 17, IFLA_GROUP: UInt16 = 27
    static let IFA_ADDRESS: UInt16 = 1, IFA_LOCAL: UInt16 = 2, IFA_LABEL: UInt16 = 3
    static let IFA_BROADCAST: UInt16 = 4, IFA_CACHEINFO: UInt16 = 6, IFA_FLAGS: UInt16 = 8
    static let IFA_F_PERMANENT: UInt8 = 0x80
    static let RT_SCOPE_UNIVERSE: UInt8 = 0, RT_SCOPE_HOST: UInt8 = 254
    static let IFF_LOWER_UP: UInt32 = 0x10000
    /// IF_OPER_UNKNOWN (what lo reports), IF_OPER_UP.
    static let operUnknown: UInt8 = 0, operUp: UInt8 = 6
    static let ARPHRD_ETHER: UInt16 = 1, ARPHRD_LOOPBACK: UInt16 = 772
}

/// A request's header fields.
struct NetlinkHeader {
    var length: UInt32
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var pid: UInt32

    /// Reads the header at `offset` of `bytes` (nil when fewer than 16 bytes remain).
    init?(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard bytes.count - offset >= Netlink.headerLength else { return nil }
        length = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        type = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
        flags = bytes.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self)
        sequence = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
        pid = bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
    }
}

/// Builds one datagram of netlink messages.
struct NetlinkWriter {
    private(set) var bytes: [UInt8] = []
    private var messageStart = 0

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }

    mutating func put<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }

    /// Starts a message; `finish` fills in its length.
    mutating func begin(type: UInt16, flags: UInt16, sequence: UInt32, pid: UInt32) {
        pad()
        messageStart = bytes.count
        put(UInt32(0)); put(type); put(flags); put(sequence); put(pid)
    }

    mutating func finish() {
        let length = UInt32(bytes.count - messageStart)
        withUnsafeBytes(of: length.littleEndian) { for i in 0..<4 { bytes[messageStart + i] = $0[i] } }
        pad()
    }

    mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
        put(UInt16(4 + payload.count)); put(type)
        bytes.append(contentsOf: payload)
        pad()
    }

    mutating func attribute<T: FixedWidthInteger>(_ type: UInt16, integer v: T) {
        attribute(type, withUnsafeBytes(of: v.littleEndian) { Array($0) })
    }

    mutating func attribute(_ type: UInt16, string: String) { attribute(type, Array(string.utf8) + [0]) }

    /// RTM_NEWLINK for `e` (rtnl_fill_ifinfo's fields that getifaddrs and `ip link` read).
    mutating func link(_ e: InterfaceEntry, flags: UInt16, sequence: UInt32, pid: UInt32) {
        begin(type: Netlink.RTM_NEWLINK, flags: flags, sequence: sequence, pid: pid)
        // struct ifinfomsg: family, pad, type, index, flags, change.
        put(UInt8(0)); put(UInt8(0))
        put(e.isLoopback ? Netlink.ARPHRD_LOOPBACK : Netlink.ARPHRD_ETHER)
        put(e.index)
        put(UInt32(UInt16(bitPattern: e.flags)) | Netlink.IFF_LOWER_UP)
        put(UInt32(0))
        attribute(Netlink.IFLA_IFNAME, string: e.name)
        attribute(Netlink.IFLA_TXQLEN, integer: UInt32(1000))
        attribute(Netlink.IFLA_OPERSTATE, integer: e.isLoopback ? Netlink.operUnknown : Netlink.operUp)
        attribute(Netlink.IFLA_LINKMODE, integer: UInt8(0))
        attribute(Netlink.IFLA_MTU, integer: UInt32(e.mtu))
        attribute(Netlink.IFLA_GROUP, integer: UInt32(0))
        let mac = (0..<6).map { UInt8(truncatingIfNeeded: e.mac >> (40 - 8 * UInt64($0))) }
        attribute(Netlink.IFLA_ADDRESS, mac)
        attribute(Netlink.IFLA_BROADCAST, e.isLoopback ? [UInt8](repeating: 0, count: 6) : [UInt8](repeating: 0xff, count: 6))
        // struct rtnl_link_stats: 24 counters, none kept per interface here.
        attribute(Netlink.IFLA_STATS, [UInt8](repeating: 0, count: 96))
        finish()
    }

    /// RTM_NEWADDR for `e`'s IPv4 address (inet_fill_ifaddr).
    mutating func address(_ e: InterfaceEntry, flags: UInt16, sequence: UInt32, pid: UInt32) {
        begin(type: Netlink.RTM_NEWADDR, flags: flags, sequence: sequence, pid: pid)
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        put(UInt8(AF_INET)); put(UInt8(e.prefixLength)); put(Netlink.IFA_F_PERMANENT)
        put(e.isLoopback ? Netlink.RT_SCOPE_HOST : Netlink.RT_SCOPE_UNIVERSE)
        put(UInt32(e.index))
        let a = (0..<4).map { e.address[$0] }
        attribute(Netlink.IFA_ADDRESS, a)
        attribute(Netlink.IFA_LOCAL, a)
        if !e.isLoopback && e.prefixLength < 31 {
            let b = e.address.rawValue | ~e.netmask.rawValue
            attribute(Netlink.IFA_BROADCAST, (0..<4).map { UInt8(truncatingIfNeeded: b >> (24 - 8 * UInt32($0))) })
        }
        attribute(Netlink.IFA_LABEL, string: e.name)
        attribute(Netlink.IFA_FLAGS, integer: UInt32(Netlink.IFA_F_PERMANENT))
        // struct ifa_cacheinfo: preferred and valid lifetimes forever, no timestamps.
        attribute(Netlink.IFA_CACHEINFO, [UInt8](repeating: 0xff, count: 8) + [UInt8](repeating: 0, count: 8))
        finish()
    }

    /// NLMSG_DONE closing a dump (its payload: the dump's status, 0).
    mutating func done(sequence: UInt32, pid: UInt32) {
        begin(type: Netlink.NLMSG_DONE, flags: Netlink.NLM_F_MULTI, sequence: sequence, pid: pid)
        put(Int32(0))
        finish()
    }

    /// NLMSG_ERROR for `request` (error 0: an acknowledgement, the header only and
    /// NLM_F_CAPPED; otherwise -errno and the whole request unless `capped`).
    mutating func error(_ errno: Int32, request: UnsafeRawBufferPointer, header: NetlinkHeader, pid: UInt32, capped: Bool) {
        let whole = errno != 0 && !capped
        begin(type: Netlink.NLMSG_ERROR, flags: whole ? 0 : Netlink.NLM_F_CAPPED, sequence: header.sequence, pid: pid)
        put(-errno)
        bytes.append(contentsOf: whole ? request : UnsafeRawBufferPointer(rebasing: request[0..<Netlink.headerLength]))
        pad()   // nlmsg_append: the copy's padding counts in the length
        finish()
    }
}
