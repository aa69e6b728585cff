// XattrCalls.swift: extended attributes (set/get/list/remove, by path, by link and by
// descriptor). HostFS files keep them on the host (the host checks names, sizes, flags
// and permissions); MemFS nodes keep their own, as a tmpfs does (MemXattr.swift); other
// libOS nodes have none: get ENODATA, list empty, set and remove EOPNOTSUPP.
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    private enum XattrOp { case set, get, list, remove }

    /// Host numbers of the l* (by link) and f* (by descriptor) forms.
    private static func hostNumbers(_ op: XattrOp) -> (byLink: Int, byFD: Int) {
        switch op {
        case .set: (189, 190)
        case .get: (192, 193)
        case .list: (195, 196)
        case .remove: (198, 199)
        }
    }

    static func registerXattr(_ d: Dispatcher) {
        let table: [(SyscallNumber, XattrOp, Bool)] = [
            (.setxattr, .set, true), (.lsetxattr, .set, false),
            (.getxattr, .get, true), (.lgetxattr, .get, false),
            (.listxattr, .list, true), (.llistxattr, .list, false),
            (.removexattr, .remove, true), (.lremovexattr, .remove, false),
        ]
        for (nr, op, follow) in table {
            d.register(nr) { f, p throws(LinuxError) in
                try validate(op, f)
                let path = try UserMemory.string(f.a0)
                let loc = try fsCall { () throws(Errno) in try p.fs.resolve(path, followSymlinks: follow) }
                guard let host = loc.hostPath else { return try libOS(op, loc.node, f, p) }
                return try byPath(host, hostNumbers(op).byLink, f)
            }
        }
        for (nr, op) in [(SyscallNumber.fsetxattr, XattrOp.set), (.fgetxattr, .get), (.flistxattr, .list),
                               (.fremovexattr, .remove)] {
            d.register(nr) { f, p throws(LinuxError) in
                let file = try p.fd(f.a0)
                if file.flags.contains(.path) { throw LinuxError(.EBADF) }
                try validate(op, f)
                if let fd = file.handle.hostDescriptor {
                    return try hostCall(hostNumbers(op).byFD, UInt64(fd), f.a1, f.a2, f.a3, f.a4)
                }
                guard let host = file.location.hostPath else { return try libOS(op, file.location.node, f, p) }
                return try byPath(host, hostNumbers(op).byLink, f)
            }
        }
    }

    private static func byPath(_ path: String, _ nr: Int, _ f: SyscallFrame) throws(LinuxError) -> Int64 {
        let r = path.withPathCString { cj_host_syscall(Int64(nr), UInt64(UInt(bitPattern: $0)), f.a1, f.a2, f.a3, f.a4, 0) }
        if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
        return r
    }

    /// The argument checks Linux makes before it looks at the file.
    private static func validate(_ op: XattrOp, _ f: SyscallFrame) throws(LinuxError) {
        switch op {
        case .set:
            guard f.a4 & ~UInt64(3) == 0 else { throw LinuxError(.EINVAL) }  // XATTR_CREATE | XATTR_REPLACE
            try checkName(f.a1)
            guard f.a3 <= 65536 else { throw LinuxError(.E2BIG) }
            _ = try UserMemory.kernelBuffer(f.a2, Int(f.a3))  // the host reads the value: the program's memory only
        case .get:
            try checkName(f.a1)
            _ = try UserMemory.kernelBuffer(f.a2, Int(clamping: min(f.a3, 65536)))
        case .remove:
            try checkName(f.a1)
        case .list:
            _ = try UserMemory.kernelBuffer(f.a1, Int(clamping: min(f.a2, 65536)))
        }
    }

    private static func checkName(_ address: UInt64) throws(LinuxError) {
        let name: String
        do { name = try UserMemory.string(address, limit: 256) } catch {
            throw error.code == LinuxError.Code.ENAMETOOLONG.rawValue ? LinuxError(.ERANGE) : error
        }
        guard !name.isEmpty else { throw LinuxError(.ERANGE) }
    }

    /// A node of the libOS's own: MemFS keeps attributes; others have none.
    private static func libOS(_ op: XattrOp, _ node: any Node, _ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        guard let store = node as? ExtendedAttributes else { return try noAttributes(op) }
        let cred = p.fs.credentials
        func copyOut(_ bytes: [UInt8], to address: UInt64, size: UInt64) throws(LinuxError) -> Int64 {
            if size == 0 { return Int64(bytes.count) }
            guard bytes.count <= size else { throw LinuxError(.ERANGE) }
            let dst = try UserMemory.buffer(address, bytes.count, for: .write)
            bytes.withUnsafeBytes { if !$0.isEmpty { dst.copyMemory(from: $0) } }
            return Int64(bytes.count)
        }
        switch op {
        case .set:
            let name = try UserMemory.string(f.a1, limit: 256)
            let value = Array(try UserMemory.buffer(f.a2, Int(f.a3), for: .read))
            try fsCall { () throws(Errno) in try store.setAttribute(name, value, flags: Int32(f.a4), credentials: cred) }
            return 0
        case .get:
            let name = try UserMemory.string(f.a1, limit: 256)
            let value = try fsCall { () throws(Errno) in try store.attribute(name, credentials: cred) }
            return try copyOut(value, to: f.a2, size: f.a3)
        case .list:
            var names: [UInt8] = []
            for n in store.attributeNames(credentials: cred) { names += Array(n.utf8); names.append(0) }
            return try copyOut(names, to: f.a1, size: f.a2)
        case .remove:
            let name = try UserMemory.string(f.a1, limit: 256)
            try fsCall { () throws(Errno) in try store.removeAttribute(name, credentials: cred) }
            return 0
        }
    }

    private static func noAttributes(_ op: XattrOp) throws(LinuxError) -> Int64 {
        switch op {
        case .get: throw LinuxError(.ENODATA)
        case .list: return 0
        case .set, .remove: throw LinuxError(.EOPNOTSUPP)
        }
    }
}
