// InetOptions.swift: the socket options a NetStack-backed socket keeps (SOL_SOCKET,
// IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6), decoded and reported with Linux's sizes,
// ranges and doubling; the ones it does not know are ENOPROTOOPT.
import Glibc
import NetStack
import SyscallEmu
import SystemPackage

/// Option numbers (Linux x86-64).
enum OptionName {
    static let SO_REUSEADDR: Int32 = 2, SO_ERROR: Int32 = 4, SO_BROADCAST: Int32 = 6, SO_SNDBUF: Int32 = 7
    static let SO_RCVBUF: Int32 = 8, SO_KEEPALIVE: Int32 = 9, SO_LINGER: Int32 = 13, SO_REUSEPORT: Int32 = 15
    static let SO_ACCEPTCONN: Int32 = 30
    static let TCP_NODELAY: Int32 = 1, TCP_CORK: Int32 = 3, TCP_KEEPIDLE: Int32 = 4, TCP_KEEPINTVL: Int32 = 5
    static let TCP_KEEPCNT: Int32 = 6, TCP_DEFER_ACCEPT: Int32 = 9, TCP_INFO: Int32 = 11
    static let IP_TOS: Int32 = 1, IPV6_V6ONLY: Int32 = 26
    static let IP_RECVERR: Int32 = 11, IPV6_RECVERR: Int32 = 25
}

/// Linux's buffer limits (net.core.wmem_max/rmem_max, SOCK_MIN_SNDBUF/RCVBUF) and the
/// defaults getsockopt reports (tcp_wmem[1], tcp_rmem[1], the UDP default).
enum BufferLimits {
    static let maximum: Int32 = 212_992
    static let minimumSend: Int32 = 4608, minimumReceive: Int32 = 2304
    static let tcpSend: Int32 = 16_384, tcpReceive: Int32 = 131_072, udp: Int32 = 212_992
}

/// The options of one socket. Guarded by its owner's lock.
struct InetOptions {
    var reuseAddress = false
    var reusePort = false
    var broadcast = false
    var keepalive = TCPKeepalive()
    var linger: (on: Bool, seconds: Int32) = (false, 0)
    var sendBuffer: Int32
    var receiveBuffer: Int32
    var noDelay = false
    var cork = false
    /// TCP_DEFER_ACCEPT as Linux keeps it: SYN-ACK retransmissions.
    var deferAcceptRetransmits: Int32 = 0
    var tos: Int32 = 0
    var v6only = false
    /// IP_RECVERR/IPV6_RECVERR (glibc's resolver sets it): kept and reported; NetStack
    /// reports no ICMP errors, so the error queue stays empty.
    var receiveErrors = false

    init(stream: Bool) {
        sendBuffer = stream ? BufferLimits.tcpSend : BufferLimits.udp
        receiveBuffer = stream ? BufferLimits.tcpReceive : BufferLimits.udp
    }

    /// NetStack's configuration for a connection or listener with these options.
    var tcpConfiguration: TCPConfiguration {
        var c = TCPConfiguration()
        // NetStack's buffers are at least its defaults: Linux autotunes past SO_*BUF's
        // defaults; an explicit smaller size is honoured.
        if receiveBuffer != BufferLimits.tcpReceive { c.receiveBufferSize = Int(receiveBuffer) }
        if sendBuffer != BufferLimits.tcpSend { c.sendBufferSize = Int(sendBuffer) }
        c.noDelay = noDelay
        c.cork = cork
        c.keepalive = keepalive
        c.linger = linger.on ? .seconds(Int64(linger.seconds)) : nil
        return c
    }

    /// setsockopt(2). `stream`: TCP (IPPROTO_TCP options exist); `bound`: IPV6_V6ONLY
    /// can no longer change.
    mutating func set(level: Int32, name: Int32, value: UnsafeRawBufferPointer, family: Int32, stream: Bool,
                      bound: Bool) throws(Errno) {
        func int() throws(Errno) -> Int32 {
            guard value.count >= 4 else { throw Errno(rawValue: EINVAL) }
            return value.loadUnaligned(as: Int32.self)
        }
        switch (level, name) {
        case (SocketConstants.SOL_SOCKET, OptionName.SO_REUSEADDR): reuseAddress = try int() != 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_REUSEPORT): reusePort = try int() != 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_BROADCAST): broadcast = try int() != 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_KEEPALIVE): keepalive.enabled = try int() != 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_SNDBUF):
            let v = min(max(try int(), 0), BufferLimits.maximum)
            sendBuffer = max(v * 2, BufferLimits.minimumSend)
        case (SocketConstants.SOL_SOCKET, OptionName.SO_RCVBUF):
            let v = min(max(try int(), 0), BufferLimits.maximum)
            receiveBuffer = max(v * 2, BufferLimits.minimumReceive)
        case (SocketConstants.SOL_SOCKET, OptionName.SO_LINGER):
            guard value.count >= 8 else { throw Errno(rawValue: EINVAL) }
            let on = value.loadUnaligned(as: Int32.self), seconds = value.loadUnaligned(fromByteOffset: 4, as: Int32.self)
            linger = (on != 0, max(seconds, 0))
        case (SocketConstants.IPPROTO_TCP, _) where stream:
            let v = try int()
            switch name {
            case OptionName.TCP_NODELAY: noDelay = v != 0
            case OptionName.TCP_CORK: cork = v != 0
            case OptionName.TCP_KEEPIDLE:
                guard (1...32767).contains(v) else { throw Errno(rawValue: EINVAL) }
                keepalive.idle = .seconds(Int64(v))
            case OptionName.TCP_KEEPINTVL:
                guard (1...32767).contains(v) else { throw Errno(rawValue: EINVAL) }
                keepalive.interval = .seconds(Int64(v))
            case OptionName.TCP_KEEPCNT:
                guard (1...127).contains(v) else { throw Errno(rawValue: EINVAL) }
                keepalive.probes = Int(v)
            case OptionName.TCP_DEFER_ACCEPT: deferAcceptRetransmits = Self.secondsToRetransmits(max(v, 0))
            default: throw Errno(rawValue: ENOPROTOOPT)
            }
        case (SocketConstants.IPPROTO_IP, OptionName.IP_TOS):
            // Linux keeps the DSCP and ECN bits the caller gave, minus ECN on TCP.
            let v = value.count >= 4 ? try int() : Int32(value.first ?? 0)
            tos = stream ? (v & 0xfc) | (tos & 0x3) : v & 0xff
        case (SocketConstants.IPPROTO_IP, OptionName.IP_RECVERR):
            receiveErrors = (value.count >= 4 ? try int() : Int32(value.first ?? 0)) != 0
        case (SocketConstants.IPPROTO_IPV6, OptionName.IPV6_RECVERR) where family == SocketConstants.AF_INET6:
            receiveErrors = try int() != 0
        case (SocketConstants.IPPROTO_IPV6, OptionName.IPV6_V6ONLY) where family == SocketConstants.AF_INET6:
            let v = try int()
            if bound { throw Errno(rawValue: EINVAL) }
            v6only = v != 0
        default:
            throw Errno(rawValue: ENOPROTOOPT)
        }
    }

    /// getsockopt(2) for what the options hold (SO_ERROR, SO_ACCEPTCONN and TCP_INFO are
    /// the socket's). Writes at most `into.count` bytes; returns the option's length.
    func get(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer, family: Int32, stream: Bool) throws(Errno) -> Int {
        let v: Int32
        switch (level, name) {
        case (SocketConstants.SOL_SOCKET, OptionName.SO_REUSEADDR): v = reuseAddress ? 1 : 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_REUSEPORT): v = reusePort ? 1 : 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_BROADCAST): v = broadcast ? 1 : 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_KEEPALIVE): v = keepalive.enabled ? 1 : 0
        case (SocketConstants.SOL_SOCKET, OptionName.SO_SNDBUF): v = sendBuffer
        case (SocketConstants.SOL_SOCKET, OptionName.SO_RCVBUF): v = receiveBuffer
        case (SocketConstants.SOL_SOCKET, OptionName.SO_LINGER):
            return Self.put([linger.on ? 1 : 0, linger.seconds], into)
        case (SocketConstants.IPPROTO_TCP, _) where stream:
            switch name {
            case OptionName.TCP_NODELAY: v = noDelay ? 1 : 0
            case OptionName.TCP_CORK: v = cork ? 1 : 0
            case OptionName.TCP_KEEPIDLE: v = Int32(keepalive.idle.components.seconds)
            case OptionName.TCP_KEEPINTVL: v = Int32(keepalive.interval.components.seconds)
            case OptionName.TCP_KEEPCNT: v = Int32(keepalive.probes)
            case OptionName.TCP_DEFER_ACCEPT: v = Self.retransmitsToSeconds(deferAcceptRetransmits)
            default: throw Errno(rawValue: ENOPROTOOPT)
            }
        case (SocketConstants.IPPROTO_IP, OptionName.IP_TOS): v = tos
        case (SocketConstants.IPPROTO_IP, OptionName.IP_RECVERR): v = receiveErrors ? 1 : 0
        case (SocketConstants.IPPROTO_IPV6, OptionName.IPV6_RECVERR) where family == SocketConstants.AF_INET6: v = receiveErrors ? 1 : 0
        case (SocketConstants.IPPROTO_IPV6, OptionName.IPV6_V6ONLY) where family == SocketConstants.AF_INET6: v = v6only ? 1 : 0
        default: throw Errno(rawValue: ENOPROTOOPT)
        }
        return Self.put([v], into)
    }

    /// Writes Int32 values (as many bytes as fit); returns their full length.
    static func put(_ values: [Int32], _ into: UnsafeMutableRawBufferPointer) -> Int {
        values.withUnsafeBytes { src in
            let n = min(src.count, into.count)
            if n > 0 { into.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n) }
            return src.count
        }
    }

    // TCP_DEFER_ACCEPT's seconds as Linux stores them (secs_to_retrans/retrans_to_secs,
    // an initial timeout of 1 s doubling up to 120 s).
    static func secondsToRetransmits(_ seconds: Int32) -> Int32 {
        guard seconds > 0 else { return 0 }
        var res: Int32 = 1, timeout: Int32 = 1, period: Int32 = 1
        while seconds > period && res < 255 {
            res += 1
            timeout = min(timeout << 1, 120)
            period += timeout
        }
        return res
    }

    static func retransmitsToSeconds(_ retransmits: Int32) -> Int32 {
        guard retransmits > 0 else { return 0 }
        var timeout: Int32 = 1, period: Int32 = 1, r = retransmits
        while r > 1 {
            r -= 1
            timeout = min(timeout << 1, 120)
            period += timeout
        }
        return period
    }
}
