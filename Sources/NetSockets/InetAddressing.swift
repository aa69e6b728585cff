// InetAddressing.swift: AF_INET and dual-stack AF_INET6 sockaddrs to NetStack's IPv4
// endpoints and back (IPv4 peers of an AF_INET6 socket appear as ::ffff:a.b.c.d), and
// NetStack's socket errors as Linux's errno values.
import FileSystem
import Glibc
import NetStack
import SyscallEmu
import SystemPackage

/// The program's view of an address (SyscallEmu's sockaddr bytes).
typealias SockAddr = SyscallEmu.SocketAddress
/// NetStack's IPv4 endpoint.
typealias Endpoint = NetStack.SocketAddress

/// What a bind or connect address names, for a socket of some family.
enum InetTarget: Equatable {
    /// An IPv4 address (0.0.0.0 = any) and port.
    case ipv4(IPv4Address, UInt16)
    /// AF_UNSPEC (connect: dissolve the association).
    case unspecified
    /// An IPv6 address that is not IPv4-mapped: `any` for `::`. NetStack speaks no IPv6.
    case ipv6(any: Bool, port: UInt16)
}

enum InetAddressing {
    /// Decodes `a` for a socket of `family` (Linux's checks: short lengths EINVAL,
    /// another family EAFNOSUPPORT; AF_UNSPEC only where `allowUnspecified`).
    static func decode(_ a: SockAddr, family: Int32, allowUnspecified: Bool = false) throws(Errno) -> InetTarget {
        if allowUnspecified && a.length >= 2 && a.family == SocketConstants.AF_UNSPEC { return .unspecified }
        if family == SocketConstants.AF_INET {
            guard a.length >= 16 else { throw Errno(rawValue: EINVAL) }
            guard a.family == SocketConstants.AF_INET else { throw Errno(rawValue: EAFNOSUPPORT) }
            return .ipv4(IPv4Address(rawValue: a.inetAddress!), a.port!)
        }
        // AF_INET6: sockaddr_in6 (24 bytes without the scope id, as RFC 2133 had it).
        guard a.length >= 24 else { throw Errno(rawValue: EINVAL) }
        guard a.family == SocketConstants.AF_INET6 else { throw Errno(rawValue: EAFNOSUPPORT) }
        let port = a.port!
        var zeroTen = true
        for i in 8..<18 where a[i] != 0 { zeroTen = false }
        if zeroTen && a[18] == 0xff && a[19] == 0xff {
            let v4 = (20..<24).reduce(UInt32(0)) { $0 << 8 | UInt32(a[$1]) }
            return .ipv4(IPv4Address(rawValue: v4), port)
        }
        var allZero = true
        for i in 8..<24 where a[i] != 0 { allZero = false }
        return .ipv6(any: allZero, port: port)
    }

    /// `endpoint` as a socket of `family` reports it.
    static func encode(_ address: IPv4Address, _ port: UInt16, family: Int32) -> SockAddr {
        if family == SocketConstants.AF_INET { return .inet(address: address.rawValue, port: port) }
        var a = SockAddr.inet6(address: zero16, port: port)
        if !address.isUnspecified {
            a[18] = 0xff; a[19] = 0xff
            for i in 0..<4 { a[20 + i] = address[i] }
        }
        return a
    }

    static func encode(_ e: Endpoint, family: Int32) -> SockAddr { encode(e.address, e.port, family: family) }

    private static let zero16 = [UInt8](repeating: 0, count: 16)
}

extension Errno {
    /// The errno Linux gives for a NetStack socket error.
    init(_ e: NetStack.SocketError) { self.init(rawValue: e.errno) }

    static func linux(_ code: Int32) -> Errno { Errno(rawValue: code) }
}
