// UnixProcNet.swift: /proc/net/unix (and /proc/self/net/unix): the instance's AF_UNIX
// sockets in Linux's format; the other /proc/net files are the host's.
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension UnixSocketProvider {
    /// The text of /proc/net/unix: one line per open socket, as Linux's unix_seq_show
    /// prints it (kernel addresses hidden as zeros, as for an unprivileged reader).
    public func procNetUnix() -> String {
        var out = "Num       RefCount Protocol Flags    Type St Inode Path\n"
        let rows = lock.withLock { () -> [(UnixSocket, Bool, Int32, Bool, UnixName?)] in
            openSockets.map { ($0, $0.state == .listening, $0.socketType, $0.state == .connected, $0.name) }
        }
        for (s, listening, type, connected, name) in rows.sorted(by: { ($0.0.node.inodeNumber) < ($1.0.node.inodeNumber) }) {
            var line = "0000000000000000: 00000002 00000000 "
            line += hex(listening ? 0x10000 : 0, 8) + " " + hex(Int(type), 4) + " " + hex(connected ? 3 : 1, 2) + " "
            let ino = String(s.node.inodeNumber)
            line += String(repeating: " ", count: max(0, 5 - ino.count)) + ino
            if let name { line += " " + name.procText }
            out += line + "\n"
        }
        return out
    }

    private func hex(_ v: Int, _ width: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

extension AnonymousNode {
    /// st_ino.
    var inodeNumber: UInt64 { (try? status().inode) ?? 0 }
}

extension ProcFS {
    /// /proc/self/net: "unix" from the instance, everything else from the host.
    func netDirectory() -> ProcDirectory {
        let p = process
        let unix = ProcText(fs: self, inode: 21) {
            let provider = try? p.sockets.provider(for: SocketConstants.AF_UNIX)
            return Array(((provider as? UnixSocketProvider)?.procNetUnix() ?? "Num       RefCount Protocol Flags    Type St Inode Path\n").utf8)
        }
        let hostNet: () throws(Errno) -> any Node = { [unowned self] () throws(Errno) -> any Node in
            try self.host.root.lookup(String(getpid())).lookup("net")
        }
        return ProcDirectory(fs: self, inode: 22, entries: { [("unix", unix)] },
                             fallback: { name throws(Errno) in try hostNet().lookup(name) },
                             fallbackList: {
                                 var names: [(String, NodeKind)] = []
                                 try? hostNet().readDirectory(after: 0) { e in
                                     if e.name != "." && e.name != ".." && e.name != "unix" { names.append((e.name, e.kind)) }
                                     return true
                                 }
                                 return names
                             })
    }
}
