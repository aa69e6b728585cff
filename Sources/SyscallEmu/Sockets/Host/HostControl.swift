// HostControl.swift: control messages to and from a host socket's cmsg buffer (IP_TOS,
// IP_PKTINFO, timestamps, SCM_CREDENTIALS on netlink); open files cannot cross to the host.
import CJunction
import SystemPackage

enum HostControl {
    /// The cmsg bytes for `messages`; EINVAL for SCM_RIGHTS (no host descriptors to pass,
    /// and no host family here takes them).
    static func encode(_ messages: [ControlMessage]) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        for message in messages {
            let level: Int32, type: Int32, data: [UInt8]
            switch message {
            case .rights: throw .invalidArgument
            case let .credentials(pid, uid, gid):
                (level, type) = (SocketConstants.SOL_SOCKET, ControlLayout.scmCredentials)
                data = withUnsafeBytes(of: (pid, uid, gid)) { Array($0.prefix(12)) }
            case let .other(l, t, d):
                (level, type, data) = (l, t, d)
            }
            let len = ControlLayout.header + data.count
            withUnsafeBytes(of: UInt64(len)) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: level) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: type) { out.append(contentsOf: $0) }
            out.append(contentsOf: data)
            out.append(contentsOf: repeatElement(0, count: ControlLayout.align(len) - len))
        }
        return out
    }

    /// The messages in a host cmsg buffer. Host descriptors (SCM_RIGHTS) are closed.
    static func decode(_ buf: UnsafeRawBufferPointer) -> [ControlMessage] {
        var out: [ControlMessage] = []
        var offset = 0
        while offset + ControlLayout.header <= buf.count {
            let len = Int(buf.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let level = buf.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
            let type = buf.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
            guard len >= ControlLayout.header, len <= buf.count - offset else { break }
            let data = UnsafeRawBufferPointer(rebasing: buf[(offset + ControlLayout.header)..<(offset + len)])
            switch (level, type) {
            case (SocketConstants.SOL_SOCKET, ControlLayout.scmRights):
                for i in 0..<(data.count / 4) {
                    _ = cj_host_syscall(3, UInt64(UInt32(bitPattern: data.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))), 0, 0, 0, 0, 0)
                }
            case (SocketConstants.SOL_SOCKET, ControlLayout.scmCredentials) where data.count >= 12:
                out.append(.credentials(pid: data.loadUnaligned(as: Int32.self), uid: data.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
                                        gid: data.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
            default:
                out.append(.other(level: level, type: type, data: Array(data)))
            }
            offset += ControlLayout.align(len)
        }
        return out
    }
}
