// UnixOptions.swift: the socket options of AF_UNIX sockets, as Linux answers them:
// SO_SNDBUF/SO_RCVBUF (doubled, clamped to net.core.[wr]mem_max, the FORCE forms for
// root), SO_PASSCRED, SO_PEERCRED, SO_ACCEPTCONN, SO_ERROR, plain flags stored as given;
// ENOPROTOOPT for the rest and EOPNOTSUPP for other levels (AF_UNIX has none).
import FileSystem
import SystemPackage

extension UnixSocket {
    // Linux's SOL_SOCKET option numbers.
    static let SO_REUSEADDR: Int32 = 2, SO_TYPE: Int32 = 3, SO_ERROR: Int32 = 4, SO_DONTROUTE: Int32 = 5
    static let SO_BROADCAST: Int32 = 6, SO_SNDBUF: Int32 = 7, SO_RCVBUF: Int32 = 8, SO_KEEPALIVE: Int32 = 9
    static let SO_OOBINLINE: Int32 = 10, SO_PASSCRED: Int32 = 16, SO_PEERCRED: Int32 = 17
    static let SO_ACCEPTCONN: Int32 = 30, SO_SNDBUFFORCE: Int32 = 32, SO_RCVBUFFORCE: Int32 = 33
    static let SO_PASSSEC: Int32 = 34, SO_PROTOCOL: Int32 = 38, SO_DOMAIN: Int32 = 39
    /// Flags kept and reported as booleans, with no effect on AF_UNIX.
    static let plainFlags: Set<Int32> = [SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE, SO_PASSSEC]
    // Tunables: Linux's floors for the buffer sizes (SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF)
    // and the sysctl ceilings.
    static let minSendBuffer = 4608, minReceiveBuffer = 2304
    static let maxSendBuffer = UnixSocketProvider.hostSysctl("/proc/sys/net/core/wmem_max") ?? 212_992
    static let maxReceiveBuffer = UnixSocketProvider.hostSysctl("/proc/sys/net/core/rmem_max") ?? 212_992

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        guard level == SocketConstants.SOL_SOCKET else { throw .notSupported }
        let known: Set<Int32> = Self.plainFlags.union([Self.SO_SNDBUF, Self.SO_RCVBUF, Self.SO_SNDBUFFORCE,
                                                      Self.SO_RCVBUFFORCE, Self.SO_PASSCRED])
        guard known.contains(name) else { throw .protocolNotAvailable }
        guard value.count >= 4 else { throw .invalidArgument }
        let v = value.loadUnaligned(as: Int32.self)
        let privileged = provider.fs.credentials.uid == 0
        try locked { (touched: inout [UnixSocket]) throws(Errno) in
            switch name {
            case Self.SO_SNDBUF, Self.SO_SNDBUFFORCE:
                if name == Self.SO_SNDBUFFORCE && !privileged { throw .notPermitted }
                // min_t(u32, ...): a negative value is the ceiling.
                let ceiling = name == Self.SO_SNDBUF ? Self.maxSendBuffer : Int(Int32.max / 2)
                let n = min(Int(UInt32(bitPattern: v)), ceiling)
                sendBuffer = max(n * 2, Self.minSendBuffer)
                touched.append(self)
            case Self.SO_RCVBUF, Self.SO_RCVBUFFORCE:
                if name == Self.SO_RCVBUFFORCE && !privileged { throw .notPermitted }
                let ceiling = name == Self.SO_RCVBUF ? Self.maxReceiveBuffer : Int(Int32.max / 2)
                let n = min(Int(UInt32(bitPattern: v)), ceiling)
                receiveBuffer = max(n * 2, Self.minReceiveBuffer)
            case Self.SO_PASSCRED:
                passCredentials = v != 0
            default:
                plainOptions[name] = v != 0 ? 1 : 0
            }
        }
    }

    func getOption(level: Int32, name: Int32, into out: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard level == SocketConstants.SOL_SOCKET else { throw .notSupported }
        func put<T>(_ v: T) -> Int {
            withUnsafeBytes(of: v) { b in
                let n = min(b.count, out.count)
                if n > 0 { out.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: n) }
                return b.count
            }
        }
        return try provider.lock.withLock { () throws(Errno) -> Int in
            switch name {
            case Self.SO_TYPE: return put(socketType)
            case Self.SO_DOMAIN: return put(family)
            case Self.SO_PROTOCOL: return put(protocolNumber)
            case Self.SO_ERROR:
                let e = pendingError.map { $0.rawValue } ?? 0
                pendingError = nil
                return put(e)
            case Self.SO_SNDBUF: return put(Int32(sendBuffer))
            case Self.SO_RCVBUF: return put(Int32(receiveBuffer))
            case Self.SO_PASSCRED: return put(Int32(passCredentials ? 1 : 0))
            case Self.SO_ACCEPTCONN: return put(Int32(state == .listening ? 1 : 0))
            case Self.SO_PEERCRED:
                let c = peerCredentials ?? .none
                return put((c.pid, c.uid, c.gid))
            case let n where Self.plainFlags.contains(n): return put(plainOptions[n] ?? 0)
            default: throw .protocolNotAvailable
            }
        }
    }
}
