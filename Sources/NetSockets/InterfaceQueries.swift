// InterfaceQueries.swift: the interface ioctls a NetStack-backed socket answers about
// the instance's interfaces (`lo` and the --net device): SIOCGIFCONF, SIOCGIFADDR,
// SIOCGIFNETMASK, SIOCGIFBRDADDR, SIOCGIFFLAGS, SIOCGIFINDEX, SIOCGIFMTU, SIOCGIFHWADDR,
// SIOCGIFNAME; struct ifreq and struct ifconf as Linux lays them out.
import Glibc
import NetStack
import SyscallEmu
import SystemPackage

/// One interface as ioctls and netlink report it.
struct InterfaceEntry {
    var name: String
    var index: Int32
    var address: IPv4Address
    var prefixLength: Int
    var flags: Int16
    var mtu: Int32
    var mac: UInt64
    var isLoopback: Bool

    var netmask: IPv4Address {
        IPv4Address(rawValue: prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength))
    }
}

extension InstanceNetwork {
    /// `lo` (index 1) and the device (index 2, named after the TAP or `eth0`).
    var interfaceEntries: [InterfaceEntry] {
        var out = [InterfaceEntry(name: "lo", index: 1, address: .loopback, prefixLength: 8,
                                  flags: 0x49, mtu: Int32(loopback.configuration.mtu), mac: 0, isLoopback: true)]  // UP|LOOPBACK|RUNNING
        if let e = external {
            var name = e.deviceInfo.name
            if name.hasPrefix("tap:") { name = String(name.dropFirst(4)) }
            if name.utf8.count > 15 || name.contains(":") || name.contains("/") || name.isEmpty { name = "eth0" }
            out.append(InterfaceEntry(name: name, index: 2, address: e.address, prefixLength: e.configuration.address.prefixLength,
                                      flags: 0x1043, mtu: Int32(e.configuration.mtu),   // UP|BROADCAST|RUNNING|MULTICAST
                                      mac: e.configuration.mac.rawValue, isLoopback: false))
        }
        return out
    }
}

enum InterfaceQueries {
    static let SIOCGIFNAME: UInt64 = 0x8910, SIOCGIFCONF: UInt64 = 0x8912, SIOCGIFFLAGS: UInt64 = 0x8913
    static let SIOCGIFADDR: UInt64 = 0x8915, SIOCGIFBRDADDR: UInt64 = 0x8919, SIOCGIFNETMASK: UInt64 = 0x891b
    static let SIOCGIFMTU: UInt64 = 0x8921, SIOCGIFHWADDR: UInt64 = 0x8927, SIOCGIFINDEX: UInt64 = 0x8933
    /// sizeof(struct ifreq), sizeof(struct ifconf).
    static let ifreqSize = 40, ifconfSize = 16

    static func user(_ address: UInt64, _ length: Int, _ access: UserMemory.Access) throws(Errno) -> UnsafeMutableRawBufferPointer {
        do { return try UserMemory.buffer(address, length, for: access) } catch { throw Errno(rawValue: error.code) }
    }

    /// Answers `request` (ENOTTY for requests that are not interface queries).
    static func control(_ network: InstanceNetwork, request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        let entries = network.interfaceEntries
        switch request {
        case SIOCGIFCONF:
            let conf = try user(argument, ifconfSize, .write)
            let length = Int(conf.loadUnaligned(as: Int32.self))
            let buffer = conf.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            if buffer == 0 {   // a size query
                conf.storeBytes(of: Int32(entries.count * ifreqSize), as: Int32.self)
                return 0
            }
            guard length >= 0 else { throw Errno(rawValue: EINVAL) }
            let fits = min(entries.count, length / ifreqSize)
            if fits > 0 {
                let out = try user(buffer, fits * ifreqSize, .write)
                for (k, e) in entries.prefix(fits).enumerated() {
                    let r = UnsafeMutableRawBufferPointer(rebasing: out[(k * ifreqSize)..<((k + 1) * ifreqSize)])
                    r.initializeMemory(as: UInt8.self, repeating: 0)
                    putName(e.name, r)
                    putInet(e.address, r)
                }
            }
            conf.storeBytes(of: Int32(fits * ifreqSize), as: Int32.self)
            return 0
        case SIOCGIFNAME:
            let r = try user(argument, ifreqSize, .write)
            let index = r.loadUnaligned(fromByteOffset: 16, as: Int32.self)
            guard let e = entries.first(where: { $0.index == index }) else { throw Errno(rawValue: ENODEV) }
            putName(e.name, r)
            return 0
        case SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX:
            let r = try user(argument, ifreqSize, .write)
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: r[0..<16]).prefix { $0 != 0 }, as: UTF8.self)
            guard let e = entries.first(where: { $0.name == name }) else { throw Errno(rawValue: ENODEV) }
            let field = UnsafeMutableRawBufferPointer(rebasing: r[16..<ifreqSize])
            switch request {
            case SIOCGIFFLAGS: field.storeBytes(of: e.flags, as: Int16.self)
            case SIOCGIFADDR: putInet(e.address, r)
            case SIOCGIFNETMASK: putInet(e.netmask, r)
            case SIOCGIFBRDADDR:
                guard !e.isLoopback else { throw Errno(rawValue: EADDRNOTAVAIL) }
                putInet(IPv4Address(rawValue: e.address.rawValue | ~e.netmask.rawValue), r)
            case SIOCGIFMTU: field.storeBytes(of: e.mtu, as: Int32.self)
            case SIOCGIFINDEX: field.storeBytes(of: e.index, as: Int32.self)
            default:   // SIOCGIFHWADDR: sa_family ARPHRD_ETHER or ARPHRD_LOOPBACK, then the MAC
                field.initializeMemory(as: UInt8.self, repeating: 0)
                field.storeBytes(of: UInt16(e.isLoopback ? 772 : 1), as: UInt16.self)
                for i in 0..<6 { field[2 + i] = UInt8(truncatingIfNeeded: e.mac >> (40 - 8 * UInt64(i))) }
            }
            return 0
        default:
            throw Errno(rawValue: ENOTTY)
        }
    }

    private static func putName(_ name: String, _ r: UnsafeMutableRawBufferPointer) {
        for i in 0..<16 { r[i] = 0 }
        for (i, b) in name.utf8.prefix(15).enumerated() { r[i] = b }
    }

    /// A sockaddr_in at the ifreq's union.
    private static func putInet(_ a: IPv4Address, _ r: UnsafeMutableRawBufferPointer) {
        for i in 16..<32 { r[i] = 0 }
        r[16] = UInt8(SocketConstants.AF_INET)
        for i in 0..<4 { r[20 + i] = a[i] }
    }
}

extension NetTCPSocket {
    func deviceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        try InterfaceQueries.control(network, request: request, argument: argument)
    }
}

extension NetUDPSocket {
    func deviceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        try InterfaceQueries.control(network, request: request, argument: argument)
    }
}
