// HostFS.swift: a host directory passed through, read and write. Nodes are paths below
// the host root; every call that io_uring has an opcode for (openat, statx, read, write,
// fsync, close, mkdirat, unlinkat, renameat, symlinkat, linkat) goes through HostIO;
// getdents64, readlinkat, ftruncate, fchmodat, fchownat and utimensat are direct calls.
import CURing
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A host directory tree as a file system.
public final class HostFS: FileSystemInstance, @unchecked Sendable {
    public let hostRoot: String
    public let io: HostIO
    public let typeName = "hostfs"
    let rootFD: Int32
    public let deviceID: UInt64
    private var rootNode: HostNode!

    /// - Parameters:
    ///   - hostRoot: an existing host directory.
    ///   - io: how blocking calls are made (io_uring per kthread, or direct).
    public init(hostRoot: String, io: HostIO = HostIO()) throws(Errno) {
        let fd = open(hostRoot, OpenFlags.path.rawValue | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var st = stat()
        fstat(fd, &st)
        self.hostRoot = hostRoot
        self.io = io
        rootFD = fd
        deviceID = UInt64(st.st_dev)
        rootNode = HostNode(fs: self, path: ".", kind: .directory)
    }

    deinit { close(rootFD) }

    public var root: any Node { rootNode }

    // MARK: calls, each returning the result or -errno

    // statx is a direct call, not an io_uring request: the kernel never completes
    // IORING_OP_STATX inline but always hands it to an io-wq worker thread, two context
    // switches per call (python3's start makes ~500), where the call itself takes a few
    // microseconds on a cached inode.
    func statx(_ path: String, into out: UnsafeMutablePointer<cju_statx_buf>) -> Int32 {
        path.withPathCString { p in
            cju_statx_direct(rootFD, p, Int32(CJU_AT_SYMLINK_NOFOLLOW), UInt32(CJU_STATX_BASIC_STATS), out)
        }
    }

    func openAt(_ path: String, _ flags: Int32, _ mode: UInt32) -> Int32 {
        path.withPathCString { p in
            io.perform({ cju_prep_openat($0, rootFD, p, flags, mode, $1) },
                       direct: { let r = openat(rootFD, p, flags, mode_t(mode)); return r >= 0 ? r : -errno })
        }
    }

    /// Opens an existing regular file or directory: a path the dentry cache holds opens
    /// at once with a direct openat2 (what io_uring's openat does inline, without a submit
    /// and a completion to reap); anything else (not cached, O_TRUNC, an error) goes the
    /// ordinary way, which gives the answer.
    func openExisting(_ path: String, _ flags: Int32) -> Int32 {
        if flags & (O_CREAT | O_TRUNC) == 0 {
            let r = path.withPathCString { cju_openat_cached(rootFD, $0, flags) }
            if r >= 0 { return r }
        }
        return openAt(path, flags, 0)
    }

    /// Opens an existing regular file or directory at `path` (a HostFS path, see
    /// `VFS.hostTarget`) in two direct calls that never block: statx for its kind (no
    /// other kind is opened here: a FIFO's or device's open may wait or have effects),
    /// then openat2 with RESOLVE_CACHED (every component in the dentry cache) and
    /// RESOLVE_NO_SYMLINKS (a symlink anywhere is the VFS's to follow). nil: not done,
    /// for whatever reason (the component-by-component open gives the answer).
    func openWithoutWalk(_ path: String, _ flags: Int32) -> (fd: Int32, kind: NodeKind)? {
        path.withPathCString { p -> (Int32, NodeKind)? in
            var sx = cju_statx_buf()
            guard cju_statx_direct(rootFD, p, Int32(CJU_AT_SYMLINK_NOFOLLOW), UInt32(CJU_STATX_BASIC_STATS), &sx) == 0,
                  let kind = HostNode.status(sx).kind, kind == .regular || kind == .directory else { return nil }
            let fd = cju_openat_unwalked(rootFD, p, flags)
            return fd >= 0 ? (fd, kind) : nil
        }
    }

    func mkdirAt(_ path: String, _ mode: UInt32) -> Int32 {
        path.withPathCString { p in
            io.perform({ cju_prep_mkdirat($0, rootFD, p, mode, $1) },
                       direct: { mkdirat(rootFD, p, mode_t(mode)) == 0 ? 0 : -errno })
        }
    }

    func unlinkAt(_ path: String, _ flags: Int32) -> Int32 {
        path.withPathCString { p in
            io.perform({ cju_prep_unlinkat($0, rootFD, p, flags, $1) },
                       direct: { unlinkat(rootFD, p, flags) == 0 ? 0 : -errno })
        }
    }

    func renameAt(_ from: String, _ to: String) -> Int32 {
        from.withPathCString { f in
            to.withPathCString { t in
                io.perform({ cju_prep_renameat($0, rootFD, f, rootFD, t, $1) },
                           direct: { renameat(rootFD, f, rootFD, t) == 0 ? 0 : -errno })
            }
        }
    }

    func symlinkAt(_ target: String, _ path: String) -> Int32 {
        target.withPathCString { t in
            path.withPathCString { p in
                io.perform({ cju_prep_symlinkat($0, t, rootFD, p, $1) },
                           direct: { symlinkat(t, rootFD, p) == 0 ? 0 : -errno })
            }
        }
    }

    func linkAt(_ from: String, _ to: String) -> Int32 {
        from.withPathCString { f in
            to.withPathCString { t in
                io.perform({ cju_prep_linkat($0, rootFD, f, rootFD, t, $1) },
                           direct: { linkat(rootFD, f, rootFD, t, 0) == 0 ? 0 : -errno })
            }
        }
    }

    /// A direct close, never io_uring's: a close completed by an io_uring worker drops the
    /// file's last reference later, in the worker's task work, after the CQE; a program
    /// that closes and then unlinks would see IN_DELETE_SELF (and the inode's release:
    /// locks, space) after its next call instead of at close(2), as Linux does.
    func closeFD(_ fd: Int32) {
        _ = close(fd)
    }

    /// The open flags the host gets: the VFS has resolved symlinks and applied O_CREAT,
    /// O_EXCL and O_TRUNC itself.
    static func passedFlags(_ flags: OpenFlags) -> Int32 {
        flags.rawValue & (OpenFlags.readWrite.rawValue | OpenFlags.writeOnly.rawValue
            | OpenFlags.append.rawValue | OpenFlags.nonBlocking.rawValue | OpenFlags.dataSync.rawValue
            | OpenFlags.directory.rawValue | O_SYNC | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */)
    }

    /// A new host open file description of the object host descriptor `fd` refers to,
    /// with `flags` (the host's /proc/self/fd/N, which reopens it as Linux does).
    public static func reopen(_ fd: Int32, _ flags: OpenFlags) throws(Errno) -> Int32 {
        let r = Glibc.open("/proc/self/fd/\(fd)", passedFlags(flags) | O_CLOEXEC | O_NOCTTY)
        guard r >= 0 else { throw Errno(rawValue: errno) }
        return r
    }

    static func check(_ r: Int32) throws(Errno) {
        _ = try SystemCall.result(raw: r).get()
    }

    /// O_TMPFILE in a host directory.
    static func openTemporary(in dir: Location, flags: OpenFlags, mode: UInt32) throws(Errno) -> OpenFile {
        guard let node = dir.node as? HostNode else { throw .notSupported }
        let fd = node.fs.openAt(node.path, (flags.rawValue & ~OpenFlags.closeOnExec.rawValue) | O_CLOEXEC, mode)
        try check(fd)
        return OpenFile(location: Location(node: node, path: dir.child("#tmpfile (deleted)")),
                        handle: HostFileHandle(fs: node.fs, fd: fd), flags: flags)
    }
}

final class HostNode: Node, @unchecked Sendable {
    let fs: HostFS
    /// Relative to the host root ("." for the root).
    let path: String
    let kind: NodeKind

    init(fs: HostFS, path: String, kind: NodeKind) {
        self.fs = fs
        self.path = path
        self.kind = kind
    }

    var fileSystem: any FileSystemInstance { fs }

    func childPath(_ name: String) -> String { path == "." ? name : path + "/" + name }

    func status() throws(Errno) -> FileStatus {
        var sx = cju_statx_buf()
        try HostFS.check(fs.statx(path, into: &sx))
        return HostNode.status(sx)
    }

    static func status(_ buf: cju_statx_buf) -> FileStatus {
        var sx = cju_stat()
        withUnsafePointer(to: buf) { cju_statx_decode($0, &sx) }
        var st = FileStatus()
        st.device = sx.dev
        st.inode = sx.ino
        st.mode = sx.mode
        st.linkCount = sx.nlink
        st.uid = sx.uid
        st.gid = sx.gid
        st.rdev = sx.rdev
        st.size = Int64(sx.size)
        st.blockSize = Int64(sx.blksize)
        st.blocks = Int64(sx.blocks)
        st.accessTime = Timespec(seconds: sx.atime_sec, nanoseconds: Int64(sx.atime_nsec))
        st.modificationTime = Timespec(seconds: sx.mtime_sec, nanoseconds: Int64(sx.mtime_nsec))
        st.changeTime = Timespec(seconds: sx.ctime_sec, nanoseconds: Int64(sx.ctime_nsec))
        return st
    }

    func lookup(_ name: String) throws(Errno) -> any Node {
        guard kind == .directory else { throw .notDirectory }
        var sx = cju_statx_buf()
        let p = childPath(name)
        try HostFS.check(fs.statx(p, into: &sx))
        guard let k = HostNode.status(sx).kind else { throw .noSuchFileOrDirectory }
        return HostNode(fs: fs, path: p, kind: k)
    }

    func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node {
        let p = childPath(name)
        switch kind {
        case .regular:
            // mknod, not open+close: no IN_OPEN/IN_CLOSE_WRITE a native creat would not make.
            try HostFS.check(p.withPathCString { mknodat(fs.rootFD, $0, S_IFREG | mode_t(mode), 0) == 0 ? 0 : -errno })
        case .fifo:
            try HostFS.check(p.withPathCString { mkfifoat(fs.rootFD, $0, mode_t(mode)) == 0 ? 0 : -errno })
        case .socket:
            // An AF_UNIX socket's name (bind): a socket inode, as the host's bind makes.
            try HostFS.check(p.withPathCString { mknodat(fs.rootFD, $0, mode_t(S_IFSOCK) | mode_t(mode), 0) == 0 ? 0 : -errno })
        default:
            throw .notPermitted
        }
        return HostNode(fs: fs, path: p, kind: kind)
    }

    func makeDirectory(_ name: String, mode: UInt32, credentials: Credentials) throws(Errno) {
        try HostFS.check(fs.mkdirAt(childPath(name), mode))
    }

    func makeSymlink(_ name: String, target: String, credentials: Credentials) throws(Errno) {
        try HostFS.check(fs.symlinkAt(target, childPath(name)))
    }

    func link(_ name: String, to node: any Node) throws(Errno) {
        guard let source = node as? HostNode, source.fs === fs else { throw .improperLink }
        try HostFS.check(fs.linkAt(source.path, childPath(name)))
    }

    func unlink(_ name: String) throws(Errno) { try HostFS.check(fs.unlinkAt(childPath(name), 0)) }

    func removeDirectory(_ name: String) throws(Errno) { try HostFS.check(fs.unlinkAt(childPath(name), AT_REMOVEDIR)) }

    func rename(_ name: String, to directory: any Node, as newName: String) throws(Errno) {
        guard let dest = directory as? HostNode, dest.fs === fs else { throw .improperLink }
        try HostFS.check(fs.renameAt(childPath(name), dest.childPath(newName)))
    }

    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) {
        let fd = fs.openAt(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        try HostFS.check(fd)
        defer { fs.closeFD(fd) }
        if cookie != 0 { _ = try SystemCall.retrying { lseek(fd, off_t(cookie), SEEK_SET) }.get() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 32768, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = cju_getdents64(fd, buffer.baseAddress, buffer.count)
            if n < 0 { throw Errno(rawValue: Int32(-n)) }
            if n == 0 { return }
            var off = 0
            while off < n {
                let p = buffer.baseAddress! + off
                let ino = p.load(as: UInt64.self)
                let next = p.load(fromByteOffset: 8, as: Int64.self)
                let reclen = Int(p.load(fromByteOffset: 16, as: UInt16.self))
                let type = p.load(fromByteOffset: 18, as: UInt8.self)
                let name = String(pathBytes: UnsafeBufferPointer(start: (p + 19).assumingMemoryBound(to: UInt8.self), count: strlen((p + 19).assumingMemoryBound(to: CChar.self))))
                let kind: NodeKind = switch type {
                case 4: .directory
                case 10: .symlink
                case 2: .characterDevice
                case 6: .blockDevice
                case 1: .fifo
                case 12: .socket
                default: .regular
                }
                if !body(DirectoryEntry(name: name, inode: ino, kind: kind, nextCookie: next)) { return }
                off += reclen
            }
        }
    }

    func readLink() throws(Errno) -> String {
        var buf = [CChar](repeating: 0, count: PathLimits.pathMax)
        let n = try SystemCall.retrying { path.withPathCString { readlinkat(fs.rootFD, $0, &buf, buf.count) } }.get()
        return String(pathBytes: buf[..<n].map { UInt8(bitPattern: $0) })
    }

    func setMode(_ mode: UInt32) throws(Errno) {
        _ = try SystemCall.retrying { path.withPathCString({ fchmodat(fs.rootFD, $0, mode_t(mode & 0o7777), 0) }) }.get()
    }

    func setOwner(uid: UInt32?, gid: UInt32?) throws(Errno) {
        _ = try SystemCall.retrying { path.withPathCString { fchownat(fs.rootFD, $0, uid ?? UInt32.max, gid ?? UInt32.max, AT_SYMLINK_NOFOLLOW) } }.get()
    }

    func setTimes(access: Timespec?, modification: Timespec?) throws(Errno) {
        func ts(_ t: Timespec?) -> timespec {
            guard let t else { return timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2 /* UTIME_OMIT */) }
            return timespec(tv_sec: Int(t.seconds), tv_nsec: Int(t.nanoseconds))
        }
        var times = [ts(access), ts(modification)]
        _ = try SystemCall.retrying { path.withPathCString({ utimensat(fs.rootFD, $0, &times, AT_SYMLINK_NOFOLLOW) }) }.get()
    }

    func truncate(to size: Int64) throws(Errno) {
        let fd = fs.openAt(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0)
        try HostFS.check(fd)
        defer { fs.closeFD(fd) }
        _ = try SystemCall.retrying { ftruncate(fd, off_t(size)) }.get()
    }

    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        if kind == .fifo { return try openFIFO(flags) }  // HostFIFO.swift
        let hostFlags = HostFS.passedFlags(flags) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY
        let fd = kind == .regular || kind == .directory ? fs.openExisting(path, hostFlags) : fs.openAt(path, hostFlags, 0)
        try HostFS.check(fd)
        if kind == .directory { return HostDirectoryHandle(fs: fs, fd: fd) }
        // A terminal or other character device (/dev/pts/N) is a stream, not positional.
        if kind == .characterDevice { return HostDescriptorHandle(fd: fd, owned: true) }
        return HostFileHandle(fs: fs, fd: fd)
    }
}

/// An open host file: positional reads and writes through HostIO.
final class HostFileHandle: FileHandle, @unchecked Sendable {
    let fs: HostFS
    let fd: Int32

    init(fs: HostFS, fd: Int32) {
        self.fs = fs
        self.fd = fd
    }

    var isSeekable: Bool { true }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        // What the page cache holds is read at once (io_uring would read it inline too,
        // at the price of a submit and a completion); a read that would block, or the
        // rest of one the cache held only part of, goes through HostIO.
        var done = 0
        if buffer.count > 0 {
            let n = cju_pread_nowait(fd, buffer.baseAddress, buffer.count, UInt64(bitPattern: offset))
            if n == buffer.count || n == 0 { return n }
            if n > 0 { done = n }
        }
        let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
        let at = offset + Int64(done)
        let r = fs.io.perform({ cju_prep_read($0, fd, rest.baseAddress, UInt32(clamping: rest.count), UInt64(bitPattern: at), $1) },
                              direct: { let n = pread(fd, rest.baseAddress, rest.count, off_t(at)); return n >= 0 ? Int32(n) : -errno })
        if done > 0 && r < 0 { return done }
        try HostFS.check(r)
        return done + Int(r)
    }

    /// `offset` < 0: append (the host fd was opened with O_APPEND).
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let r = fs.io.perform({
            cju_prep_write($0, fd, buffer.baseAddress, UInt32(clamping: buffer.count), offset < 0 ? UInt64.max : UInt64(offset), $1)
        }, direct: {
            let n = offset < 0 ? Glibc.write(fd, buffer.baseAddress, buffer.count) : pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
            return n >= 0 ? Int32(n) : -errno
        })
        try HostFS.check(r)
        return Int(r)
    }

    func size() throws(Errno) -> Int64 {
        var sx = cju_statx_buf()
        let r = "".withCString { empty in
            withUnsafeMutablePointer(to: &sx) { out in
                cju_statx_direct(fd, empty, Int32(CJU_AT_EMPTY_PATH), UInt32(CJU_STATX_BASIC_STATS), out)  // see statx(_:into:)
            }
        }
        try HostFS.check(r)
        return HostNode.status(sx).size
    }

    func sync() throws(Errno) {
        try HostFS.check(fs.io.perform({ cju_prep_fsync($0, fd, $1) }, direct: { fsync(fd) == 0 ? 0 : -errno }))
    }

    func truncate(to size: Int64) throws(Errno) {
        _ = try SystemCall.retrying { ftruncate(fd, off_t(size)) }.get()
    }

    func close() { fs.closeFD(fd) }
    var hostDescriptor: Int32? { fd }
    func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? { HostFileHandle(fs: fs, fd: try HostFS.reopen(fd, flags)) }
}

/// An open host directory (read through getdents on the node).
final class HostDirectoryHandle: FileHandle, @unchecked Sendable {
    let fs: HostFS
    let fd: Int32
    init(fs: HostFS, fd: Int32) {
        self.fs = fs
        self.fd = fd
    }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func size() throws(Errno) -> Int64 { 0 }
    func sync() throws(Errno) { _ = try SystemCall.retrying { fsync(fd) }.get() }
    func close() { fs.closeFD(fd) }
}
