// UnixAddress.swift: sockaddr_un as Linux reads and reports it: filesystem names (the
// bytes up to the first NUL), abstract names (a leading NUL, the exact length given),
// autobind names ("\0" and five hex digits) and the unnamed address (the family alone).
import SystemPackage

/// The name of an AF_UNIX socket.
enum UnixName: Hashable, Sendable {
    /// A filesystem name.
    case path(String)
    /// An abstract name: the bytes after sun_family, its leading NUL included.
    case abstract([UInt8])

    // Linux's sockaddr_un: a 2-byte family and 108 bytes of sun_path.
    static let pathOffset = 2
    static let maxLength = 110

    /// Decodes what bind, connect or sendto were given; nil for the family alone (bind:
    /// autobind). EINVAL for another family, a short or an overlong address.
    static func parse(_ a: SocketAddress) throws(Errno) -> UnixName? {
        if a.length == pathOffset && a.family == SocketConstants.AF_UNIX { return nil }
        guard a.length > pathOffset, a.length <= maxLength, a.family == SocketConstants.AF_UNIX else {
            throw .invalidArgument
        }
        if a[pathOffset] == 0 {
            return .abstract((pathOffset..<a.length).map { a[$0] })
        }
        var bytes: [UInt8] = []
        for i in pathOffset..<a.length {
            if a[i] == 0 { break }
            bytes.append(a[i])
        }
        return .path(String(decoding: bytes, as: UTF8.self))
    }

    /// The address getsockname, getpeername, accept and recvfrom report: a filesystem
    /// name with its NUL (Linux's length: 2 + strlen + 1), an abstract one as given.
    var address: SocketAddress {
        var a = SocketAddress.unixUnnamed
        let bytes: [UInt8]
        switch self {
        case .path(let p): bytes = Array(p.utf8) + [0]
        case .abstract(let b): bytes = b
        }
        let n = min(bytes.count, SocketConstants.maxAddressLength - UnixName.pathOffset)
        for i in 0..<n { a[UnixName.pathOffset + i] = bytes[i] }
        a.setLength(UnixName.pathOffset + n)
        return a
    }

    /// An autobind name: "\0" and five lowercase hex digits (Linux's unix_autobind).
    static func autobind(_ n: UInt32) -> UnixName {
        let hex = Array("0123456789abcdef".utf8)
        var b: [UInt8] = [0]
        for shift in stride(from: 16, through: 0, by: -4) { b.append(hex[Int((n >> UInt32(shift)) & 0xf)]) }
        return .abstract(b)
    }

    /// The name as /proc/net/unix prints it: abstract names with '@' for every NUL.
    var procText: String {
        switch self {
        case .path(let p): return p
        case .abstract(let b): return String(decoding: b.map { $0 == 0 ? UInt8(ascii: "@") : $0 }, as: UTF8.self)
        }
    }
}

extension SocketAddress {
    /// An unnamed AF_UNIX socket's address: the family alone (length 2).
    static var unixUnnamed: SocketAddress {
        var a = SocketAddress()
        a[0] = UInt8(SocketConstants.AF_UNIX)
        a.setLength(UnixName.pathOffset)
        return a
    }
}

/// Who sent a message: struct ucred.
struct UnixCredentials: Equatable, Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// What SO_PEERCRED gives on a socket without a peer (Linux: pid 0, the overflow ids).
    static let none = UnixCredentials(pid: 0, uid: 65534, gid: 65534)
}
