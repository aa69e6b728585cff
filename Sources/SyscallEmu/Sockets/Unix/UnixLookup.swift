// UnixLookup.swift: finding the socket a name leads to (an abstract name in the
// instance's table; a filesystem name through the VFS: ENOENT when missing, EACCES
// without write permission, ECONNREFUSED when it is no socket or nobody listens,
// EPROTOTYPE for another socket type; a host socket file outside the instance), and
// the ancillary data a send carries (SCM_RIGHTS, SCM_CREDENTIALS checked as Linux does).
import FileSystem
import SystemPackage

extension UnixSocketProvider {
    /// Where a name leads.
    enum Found {
        case local(UnixSocket)
        /// A socket file on a HostFS path that no instance socket holds: the host's.
        case host(String)
    }

    func find(_ name: UnixName, type: Int32) throws(Errno) -> Found {
        switch name {
        case .abstract(let bytes):
            return .local(try lock.withLock { () throws(Errno) -> UnixSocket in
                guard let s = socket(abstract: bytes), !s.closed else { throw .connectionRefused }
                guard s.socketType == type else { throw .protocolWrongTypeForSocket }
                return s
            })
        case .path(let path):
            // The walk and the stat may go to the host (io_uring): never under the lock.
            let loc = try fs.resolve(path, followSymlinks: true)
            guard loc.node.kind == .socket else { throw .connectionRefused }
            try fs.access(path, mode: 2)
            let st = try loc.node.status()
            let key = InodeKey(device: st.device, inode: st.inode)
            let local = try lock.withLock { () throws(Errno) -> UnixSocket? in
                guard let s = socket(inode: key), !s.closed else { return nil }
                guard s.socketType == type else { throw .protocolWrongTypeForSocket }
                return s
            }
            if let local { return .local(local) }
            if let hostPath = HostPaths.hostPath(of: loc.node) { return .host(hostPath) }
            throw .connectionRefused
        }
    }

    /// What a send carries besides its bytes.
    struct SendExtras {
        var rights: [OpenFile] = []
        var credentials: UnixCredentials?
    }

    func sendExtras(_ control: [ControlMessage]) throws(Errno) -> SendExtras {
        var e = SendExtras()
        for m in control {
            switch m {
            case .rights(let files):
                e.rights.append(contentsOf: files)
                if e.rights.count > Self.maxRights { throw .invalidArgument }
            case let .credentials(pid, uid, gid):
                // Linux's scm_check_creds: one's own pid and ids, unless privileged.
                let mine = fs.credentials
                if mine.uid != 0 && (pid != credentials.pid || uid != mine.uid || gid != mine.gid) { throw .notPermitted }
                e.credentials = UnixCredentials(pid: pid, uid: uid, gid: gid)
            case .other(let level, _, _):
                // SOL_SOCKET messages other than these are EINVAL; other levels are ignored.
                if level == SocketConstants.SOL_SOCKET { throw .invalidArgument }
            }
        }
        return e
    }
}
