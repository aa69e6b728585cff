// ControlMessages.swift: ancillary data between user memory and ControlMessage: cmsg
// headers parsed as Linux's __scm_send does (SCM_RIGHTS to open files, SCM_CREDENTIALS
// checked), and written back as put_cmsg/scm_detach_fds do (received files installed,
// MSG_CMSG_CLOEXEC, MSG_CTRUNC and dropping what does not fit).
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

enum ControlLayout {
    /// sizeof(struct cmsghdr): cmsg_len (size_t), cmsg_level, cmsg_type.
    static let header = 16
    static let scmRights: Int32 = 1, scmCredentials: Int32 = 2
    /// SCM_MAX_FD: descriptors in one message.
    static let maxRights = 253

    @inline(__always) static func align(_ n: Int) -> Int { (n + 7) & ~7 }
}

extension Handlers {
    /// The control buffer of a sendmsg as messages: EINVAL for a malformed header,
    /// EBADF for a descriptor that is not open, EPERM for credentials not ours.
    static func decodeControl(_ p: LinuxProcess, _ address: UInt64, length: UInt64) throws(LinuxError) -> [ControlMessage] {
        guard length <= UInt64(Int32.max) else { throw LinuxError(Errno(rawValue: 105)) }  // ENOBUFS
        let buf = UnsafeRawBufferPointer(try UserMemory.buffer(address, Int(length), for: .read))
        var out: [ControlMessage] = []
        var offset = 0
        while offset + ControlLayout.header <= buf.count {
            let len = buf.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let level = buf.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
            let type = buf.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
            guard len >= UInt64(ControlLayout.header), len <= UInt64(buf.count - offset) else { throw LinuxError(.EINVAL) }
            let data = UnsafeRawBufferPointer(rebasing: buf[(offset + ControlLayout.header)..<(offset + Int(len))])
            switch (level, type) {
            case (SocketConstants.SOL_SOCKET, ControlLayout.scmRights):
                let n = data.count / 4
                guard n <= ControlLayout.maxRights else { throw LinuxError(.EINVAL) }
                if n > 0 {
                    var files: [OpenFile] = []
                    files.reserveCapacity(n)
                    for i in 0..<n { files.append(try p.descriptors.get(data.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
                    out.append(.rights(files))
                }
            case (SocketConstants.SOL_SOCKET, ControlLayout.scmCredentials):
                guard data.count == 12 else { throw LinuxError(.EINVAL) }
                let pid = data.loadUnaligned(as: Int32.self)
                let uid = data.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                let gid = data.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                // scm_check_creds: our own pid and ids, unless privileged.
                let privileged = geteuid() == 0
                guard privileged || (pid == p.pid && [getuid(), geteuid()].contains(uid) && [getgid(), getegid()].contains(gid)) else {
                    throw LinuxError(.EPERM)
                }
                out.append(.credentials(pid: pid, uid: uid, gid: gid))
            default:
                out.append(.other(level: level, type: type, data: Array(data)))
            }
            offset += ControlLayout.align(Int(len))
        }
        return out
    }

    /// Writes received control messages into the caller's buffer; returns the bytes used
    /// (the new msg_controllen). Files are installed as descriptors (close-on-exec with
    /// MSG_CMSG_CLOEXEC); those that do not fit, or past the descriptor limit, are dropped
    /// and MSG_CTRUNC is set, as Linux does.
    static func encodeControl(_ p: LinuxProcess, _ control: [ControlMessage], into address: UInt64, capacity: Int,
                              closeOnExec: Bool, flags: inout MessageFlags) throws(LinuxError) -> Int {
        if control.isEmpty { return 0 }
        var used = 0
        let room = address == 0 ? 0 : capacity
        for message in control {
            let remaining = room - used
            let at = address + UInt64(used)
            switch message {
            case .rights(let files):
                let fit = remaining > ControlLayout.header ? min((remaining - ControlLayout.header) / 4, files.count) : 0
                var installed = 0
                if fit > 0 {
                    let dst = try UserMemory.pointer(at, ControlLayout.header + 4 * fit, for: .write)
                    for file in files.prefix(fit) {
                        guard let fd = try? p.descriptors.install(file, closeOnExec: closeOnExec) else { break }
                        dst.storeBytes(of: fd, toByteOffset: ControlLayout.header + 4 * installed, as: Int32.self)
                        installed += 1
                    }
                    if installed > 0 {
                        let len = ControlLayout.header + 4 * installed
                        dst.storeBytes(of: UInt64(len), as: UInt64.self)
                        dst.storeBytes(of: SocketConstants.SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                        dst.storeBytes(of: ControlLayout.scmRights, toByteOffset: 12, as: Int32.self)
                        used += min(ControlLayout.align(len), remaining)
                    }
                }
                if installed < files.count { flags.insert(.controlTruncated) }
            case let .credentials(pid, uid, gid):
                let bytes = (pid, uid, gid)
                var f = flags
                used += try withUnsafeBytes(of: bytes) { (b: UnsafeRawBufferPointer) throws(LinuxError) -> Int in
                    try putControl(SocketConstants.SOL_SOCKET, ControlLayout.scmCredentials, UnsafeRawBufferPointer(rebasing: b[0..<12]),
                                   at: at, remaining: remaining, flags: &f)
                }
                flags = f
            case let .other(level, type, data):
                var f = flags
                let r = data.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Result<Int, LinuxError> in
                    Result { () throws(LinuxError) -> Int in try putControl(level, type, b, at: at, remaining: remaining, flags: &f) }
                }
                used += try r.get()
                flags = f
            }
        }
        return used
    }

    /// put_cmsg: one message, cut short (MSG_CTRUNC) when it does not fit.
    static func putControl(_ level: Int32, _ type: Int32, _ data: UnsafeRawBufferPointer, at address: UInt64, remaining: Int,
                           flags: inout MessageFlags) throws(LinuxError) -> Int {
        guard remaining >= ControlLayout.header else {
            flags.insert(.controlTruncated)
            return 0
        }
        var len = ControlLayout.header + data.count
        if remaining < len {
            flags.insert(.controlTruncated)
            len = remaining
        }
        let dst = try UserMemory.pointer(address, len, for: .write)
        dst.storeBytes(of: UInt64(len), as: UInt64.self)
        dst.storeBytes(of: level, toByteOffset: 8, as: Int32.self)
        dst.storeBytes(of: type, toByteOffset: 12, as: Int32.self)
        if len > ControlLayout.header {
            (dst + ControlLayout.header).copyMemory(from: data.baseAddress!, byteCount: len - ControlLayout.header)
        }
        return min(ControlLayout.align(ControlLayout.header + data.count), remaining)
    }
}
