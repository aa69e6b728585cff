// UnixProvider.swift: the AF_UNIX family of a process: socket(2) and socketpair(2) for
// SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET, the name tables (filesystem names by the
// socket inode's device and number, abstract names by their bytes), autobind, the one
// lock every socket's state is kept under, and how a blocking call parks its uthread.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// AF_UNIX sockets of one process (or instance).
public final class UnixSocketProvider: SocketProvider, @unchecked Sendable {
    // Tunables: Linux's defaults, read from the host where it has them.
    /// net.core.wmem_default / rmem_default: SO_SNDBUF and SO_RCVBUF of a new socket.
    static let defaultBuffer = UnixSocketProvider.hostSysctl("/proc/sys/net/core/wmem_default") ?? 212_992
    /// net.unix.max_dgram_qlen: datagrams a receiver queues before senders wait.
    static let maxDatagramQueue = UnixSocketProvider.hostSysctl("/proc/sys/net/unix/max_dgram_qlen") ?? 10
    /// net.core.somaxconn: the largest listen backlog.
    static let maxBacklog = UnixSocketProvider.hostSysctl("/proc/sys/net/core/somaxconn") ?? 4096
    /// SCM_MAX_FD: descriptors one SCM_RIGHTS message may carry.
    static let maxRights = 253

    /// Guards the state of every socket of this provider and the name tables. Held only
    /// for short sections, never across a park.
    let lock = SpinLock()
    let fs: FileSystemContext
    /// The file system context names are resolved in.
    public var fileSystem: FileSystemContext { fs }
    /// The identity SO_PEERCRED and SCM_CREDENTIALS report for this process.
    let credentials: UnixCredentials
    /// Where filesystem and abstract names lead (weak: a closed socket leaves its file).
    private var byInode: [InodeKey: Weak] = [:]
    private var byAbstractName: [[UInt8]: Weak] = [:]
    /// Every open socket, for /proc/net/unix.
    private var sockets: [ObjectIdentifier: Weak] = [:]
    private var nextAutobind = UInt32.random(in: 0..<0x100000)
    /// Host sockets: connections to host daemons and exported names (UnixHost.swift).
    let host: UnixHostBridge
    /// Host sockets that socket pairs move into before a fork (UnixPromotion.swift); nil
    /// until the first fork with a connected pair when the instance has no host provider.
    var promotedSockets: HostSocketProvider?

    struct InodeKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    struct Weak {
        weak var socket: UnixSocket?
    }

    /// - Parameters:
    ///   - fs: resolves and creates filesystem names (the process's cwd and umask apply).
    ///   - pid: the process id SO_PEERCRED and SCM_CREDENTIALS report.
    ///   - exports: host path prefixes under which a bound socket is also a host socket
    ///     (junction's --unix-export).
    public init(fs: FileSystemContext, pid: Int32, exports: [String] = []) {
        self.fs = fs
        credentials = UnixCredentials(pid: pid, uid: fs.credentials.uid, gid: fs.credentials.gid)
        host = UnixHostBridge(exports: exports)
    }

    public func makeSocket(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> any SocketHandle {
        UnixSocket(provider: self, type: try check(family: family, type: type, protocol: `protocol`))
    }

    public func makePair(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> (any SocketHandle, any SocketHandle) {
        let type = try check(family: family, type: type, protocol: `protocol`)
        let a = UnixSocket(provider: self, type: type), b = UnixSocket(provider: self, type: type)
        lock.withLock {
            a.connectPair(b, credentials: credentials)
            b.connectPair(a, credentials: credentials)
        }
        return (a, b)
    }

    /// Linux's unix_create: the protocol (0 or PF_UNIX) first, then the type; SOCK_RAW
    /// is SOCK_DGRAM. Returns the type the socket gets.
    private func check(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> Int32 {
        guard family == SocketConstants.AF_UNIX else { throw .addressFamilyNotSupported }
        guard `protocol` == 0 || `protocol` == SocketConstants.AF_UNIX else { throw .protocolNotSupported }
        if type == SocketConstants.SOCK_RAW { return SocketConstants.SOCK_DGRAM }
        guard [SocketConstants.SOCK_STREAM, SocketConstants.SOCK_DGRAM, SocketConstants.SOCK_SEQPACKET].contains(type) else {
            throw .socketTypeNotSupported
        }
        return type
    }

    // MARK: names (lock held)

    func register(_ s: UnixSocket) { sockets[ObjectIdentifier(s)] = Weak(socket: s) }

    func forget(_ s: UnixSocket) {
        sockets[ObjectIdentifier(s)] = nil
        switch s.boundKey {
        case .inode(let k)?: if byInode[k]?.socket === s { byInode[k] = nil }
        case .abstract(let b)?: if byAbstractName[b]?.socket === s { byAbstractName[b] = nil }
        case nil: break
        }
    }

    /// Claims an abstract name (EADDRINUSE when a live socket holds it).
    func claimAbstract(_ bytes: [UInt8], for s: UnixSocket) throws(Errno) {
        if byAbstractName[bytes]?.socket != nil { throw .addressInUse }
        byAbstractName[bytes] = Weak(socket: s)
    }

    /// Claims the socket inode just created for `s`.
    func claimInode(_ k: InodeKey, for s: UnixSocket) { byInode[k] = Weak(socket: s) }

    /// A fresh autobind name, claimed for `s`.
    func autobindName(for s: UnixSocket) -> UnixName {
        while true {
            nextAutobind = (nextAutobind &+ 1) & 0xfffff
            let name = UnixName.autobind(nextAutobind)
            guard case .abstract(let b) = name else { continue }
            if (try? claimAbstract(b, for: s)) != nil { return name }
        }
    }

    func socket(abstract bytes: [UInt8]) -> UnixSocket? { byAbstractName[bytes]?.socket }
    func socket(inode k: InodeKey) -> UnixSocket? { byInode[k]?.socket }

    /// Every open socket (lock held).
    var openSockets: [UnixSocket] { sockets.values.compactMap(\.socket) }

    // MARK: waiting

    /// Parks the calling uthread, which enrolled itself in a socket's waiters under the
    /// lock, until it is woken, `deadline` passes or a signal interrupts it.
    func park(until deadline: MonotonicInstant?) -> WaitOutcome {
        precondition(UThread.isInUThread, "AF_UNIX: a blocking call must run on a uthread")
        return UThread.wait(until: deadline)
    }

    static func deadline(_ timeout: Duration?) -> MonotonicInstant? {
        timeout.map { MonotonicInstant.now.advanced(by: $0) }
    }

    static func hostSysctl(_ path: String) -> Int? {
        guard let f = fopen(path, "re") else { return nil }
        defer { fclose(f) }
        var v = 0
        return fscanf_int(f, &v) ? v : nil
    }
}

private func fscanf_int(_ f: UnsafeMutablePointer<FILE>, _ out: inout Int) -> Bool {
    var buf = [CChar](repeating: 0, count: 64)
    guard fgets(&buf, Int32(buf.count), f) != nil else { return false }
    let s = String(cString: buf).trimmingCharacters(in: " \n\t")
    guard let v = Int(s) else { return false }
    out = v
    return true
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let c = s.first, chars.contains(c) { s.removeFirst() }
        while let c = s.last, chars.contains(c) { s.removeLast() }
        return String(s)
    }
}
