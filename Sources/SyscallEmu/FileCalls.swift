// FileCalls.swift: file system calls, answered by FileSystem through the process's
// descriptor table and file system context.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

let atFDCWD: Int32 = -100
let atSymlinkNoFollow: UInt64 = 0x100
let atRemoveDir: UInt64 = 0x200
let atEmptyPath: UInt64 = 0x1000
/// The flags newfstatat accepts: AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH.
let statAtFlags: UInt64 = 0x100 | 0x800 | 0x1000

/// Runs a FileSystem call, turning its Errno into the handler's error. A wait a signal
/// interrupted ends the call (ERESTARTSYS: EINTR or a restart after the handler) or, if
/// the signal went elsewhere, runs again; EPIPE also sends SIGPIPE to the thread unless
/// the caller decides that itself (send with MSG_NOSIGNAL).
@inline(__always)
func fsCall<T>(raisingSIGPIPE: Bool = true, _ body: () throws(Errno) -> T) throws(LinuxError) -> T {
    while true {
        do { return try body() } catch {
            guard let p = Dispatcher.active?.process else { throw LinuxError(error) }
            if error == .interrupted {
                try p.checkInterrupted(.restartSys)
                continue
            }
            if error == .brokenPipe && raisingSIGPIPE {
                p.signals.send(SIGPIPE, SignalInfo(code: SignalInfo.user, pid: p.pid, uid: getuid()), to: AppThread.current)
            }
            throw LinuxError(error)
        }
    }
}

extension OpenFile {
    /// Reads and writes go straight between the host kernel and the caller's buffer (a
    /// HostFS file): the kernel checks the buffer.
    var hostCopies: Bool { handle.hostDescriptor != nil && location.node.kind == .regular }
}

extension LinuxProcess {
    /// The directory a *at call's path is relative to (nil: the cwd).
    func base(_ dirfd: UInt64) throws(LinuxError) -> Location? {
        let fd = Int32(truncatingIfNeeded: dirfd)
        if fd == atFDCWD { return nil }
        return try descriptors.get(fd).location
    }

    /// The same for `path`: an absolute path ignores dirfd (Linux looks dirfd up only for
    /// relative paths, so a bad dirfd is no error then).
    func base(_ dirfd: UInt64, for path: String) throws(LinuxError) -> Location? {
        path.utf8.first == UInt8(ascii: "/") ? nil : try base(dirfd)
    }

    func fd(_ v: UInt64) throws(LinuxError) -> OpenFile { try descriptors.get(Int32(truncatingIfNeeded: v)) }

    /// getname and then the dirfd, as a *at call without AT_EMPTY_PATH reads its path:
    /// EFAULT/ENAMETOOLONG, an empty path ENOENT, then dirfd (ignored for an absolute path).
    func path(_ address: UInt64, at dirfd: UInt64) throws(LinuxError) -> (String, Location?) {
        let path = try UserMemory.string(address)
        guard !path.isEmpty else { throw LinuxError(.ENOENT) }
        return (path, try base(dirfd, for: path))
    }
}

/// struct stat for x86-64 (144 bytes).
func storeStat(_ st: FileStatus, at address: UInt64) throws(LinuxError) {
    let p = try UserMemory.pointer(address, 144, for: .write)
    p.initializeMemory(as: UInt8.self, repeating: 0, count: 144)
    p.storeBytes(of: st.device, toByteOffset: 0, as: UInt64.self)
    p.storeBytes(of: st.inode, toByteOffset: 8, as: UInt64.self)
    p.storeBytes(of: st.linkCount, toByteOffset: 16, as: UInt64.self)
    p.storeBytes(of: st.mode, toByteOffset: 24, as: UInt32.self)
    p.storeBytes(of: st.uid, toByteOffset: 28, as: UInt32.self)
    p.storeBytes(of: st.gid, toByteOffset: 32, as: UInt32.self)
    p.storeBytes(of: st.rdev, toByteOffset: 40, as: UInt64.self)
    p.storeBytes(of: st.size, toByteOffset: 48, as: Int64.self)
    p.storeBytes(of: st.blockSize, toByteOffset: 56, as: Int64.self)
    p.storeBytes(of: st.blocks, toByteOffset: 64, as: Int64.self)
    p.storeBytes(of: st.accessTime.seconds, toByteOffset: 72, as: Int64.self)
    p.storeBytes(of: st.accessTime.nanoseconds, toByteOffset: 80, as: Int64.self)
    p.storeBytes(of: st.modificationTime.seconds, toByteOffset: 88, as: Int64.self)
    p.storeBytes(of: st.modificationTime.nanoseconds, toByteOffset: 96, as: Int64.self)
    p.storeBytes(of: st.changeTime.seconds, toByteOffset: 104, as: Int64.self)
    p.storeBytes(of: st.changeTime.nanoseconds, toByteOffset: 112, as: Int64.self)
}

extension Handlers {
    static func registerFiles(_ d: Dispatcher) {
        // Linux's order (fs/read_write.c): the descriptor, its mode, access_ok, the
        // offset (rw_verify_area), what the file refuses untouched, then the copy.
        d.register(.read) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            try checkTransfer(file, f.a1, f.a2, write: false)
            let buf = try UserMemory.buffer(f.a1, maxCount(f.a2), for: .write, hostCopies: file.hostCopies)
            return Int64(try fsCall { () throws(Errno) in try file.read(into: buf) })
        }
        d.register(.write) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            try checkTransfer(file, f.a1, f.a2, write: true)
            let buf = try UserMemory.buffer(f.a1, maxCount(f.a2), for: .read, hostCopies: file.hostCopies)
            return Int64(try fsCall { () throws(Errno) in try file.write(from: UnsafeRawBufferPointer(buf)) })
        }
        d.register(.pread64) { f, p throws(LinuxError) in
            let file = try positionalFile(p, f.a0, offset: f.a3)
            try checkTransfer(file, f.a1, f.a2, write: false, at: Int64(bitPattern: f.a3))
            let buf = try UserMemory.buffer(f.a1, maxCount(f.a2), for: .write, hostCopies: file.hostCopies)
            return Int64(try fsCall { () throws(Errno) in try file.read(into: buf, at: Int64(bitPattern: f.a3)) })
        }
        d.register(.pwrite64) { f, p throws(LinuxError) in
            let file = try positionalFile(p, f.a0, offset: f.a3)
            try checkTransfer(file, f.a1, f.a2, write: true, at: Int64(bitPattern: f.a3))
            let buf = try UserMemory.buffer(f.a1, maxCount(f.a2), for: .read, hostCopies: file.hostCopies)
            return Int64(try fsCall { () throws(Errno) in try file.write(from: UnsafeRawBufferPointer(buf), at: Int64(bitPattern: f.a3)) })
        }
        d.register(.readv) { f, p throws(LinuxError) in try vectored(f, p, write: false) }
        d.register(.writev) { f, p throws(LinuxError) in try vectored(f, p, write: true) }
        d.register(.open) { f, p throws(LinuxError) in
            try open(p, dirfd: UInt64(bitPattern: Int64(atFDCWD)), path: f.a0, flags: f.a1, mode: f.a2)
        }
        d.register(.openat) { f, p throws(LinuxError) in try open(p, dirfd: f.a0, path: f.a1, flags: f.a2, mode: f.a3) }
        d.register(.creat) { f, p throws(LinuxError) in
            try open(p, dirfd: UInt64(bitPattern: Int64(atFDCWD)), path: f.a0, flags: 0o1101, mode: f.a1)
        }
        d.register(.close) { f, p throws(LinuxError) in
            try p.descriptors.close(Int32(truncatingIfNeeded: f.a0))
            return 0
        }
        d.register(.fstat) { f, p throws(LinuxError) in
            try storeStat(try status(of: try p.fd(f.a0)), at: f.a1)
            return 0
        }
        d.register(.stat) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try storeStat(try fsCall { () throws(Errno) in try p.fs.status(path) }, at: f.a1)
            return 0
        }
        d.register(.lstat) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try storeStat(try fsCall { () throws(Errno) in try p.fs.status(path, followSymlinks: false) }, at: f.a1)
            return 0
        }
        d.register(.newfstatat) { f, p throws(LinuxError) in
            // Linux: with AT_EMPTY_PATH, an empty (or NULL) path on a descriptor is fstat
            // whatever the other flags; then the flags, the path (ENOENT if empty), dirfd
            // (AT_FDCWD with AT_EMPTY_PATH and no path: the cwd), the copy out.
            if f.a3 & atEmptyPath != 0 && Int32(truncatingIfNeeded: f.a0) >= 0,
               f.a1 == 0 || (try? UserMemory.string(f.a1))?.isEmpty == true {
                try storeStat(try status(of: try p.fd(f.a0)), at: f.a2)
                return 0
            }
            guard f.a3 & ~statAtFlags == 0 else { throw LinuxError(.EINVAL) }
            let path = try statPath(f.a1, flags: f.a3)
            try storeStat(try statusAt(p, f.a0, path, flags: f.a3), at: f.a2)
            return 0
        }
        d.register(.lseek) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard let whence = OpenFile.Whence(rawValue: Int32(truncatingIfNeeded: f.a2)) else { throw LinuxError(.EINVAL) }
            // Linux's epoll and eventfd (noop_llseek) and /dev devices (null_lseek) answer 0
            // whatever asked.
            if file.handle is EventPoll || file.handle is EventCounter || file.handle is any SpecialDevice { return 0 }
            return try fsCall { () throws(Errno) in try file.seek(Int64(bitPattern: f.a1), whence: whence) }
        }
        d.register(.getdents64) { f, p throws(LinuxError) in
            // Linux: the descriptor, ENOTDIR, then EINVAL for a buffer too small for the
            // next entry (the count is an int there: a negative one holds nothing), then
            // the copy.
            let file = try p.fd(f.a0)
            if file.flags.contains(.path) { throw LinuxError(.EBADF) }
            guard file.location.node.kind == .directory else { throw LinuxError(.ENOTDIR) }
            let count = Int(Int32(truncatingIfNeeded: f.a2))
            // No entry fits in fewer than 24 bytes: EINVAL (or 0 at the end) untouched.
            let buf = count < 24 ? UnsafeMutableRawBufferPointer(start: nil, count: 0)
                : try UserMemory.buffer(f.a1, count, for: .write)
            return Int64(try fsCall { () throws(Errno) in try file.readDirectoryEntries(into: buf) })
        }
        d.register(.readlink) { f, p throws(LinuxError) in
            try readlink(p, base: nil, path: try UserMemory.string(f.a0), buffer: f.a1, size: f.a2)
        }
        d.register(.readlinkat) { f, p throws(LinuxError) in
            // Linux: the size (an int) before the path.
            guard Int32(truncatingIfNeeded: f.a3) > 0 else { throw LinuxError(.EINVAL) }
            let path = try UserMemory.string(f.a1)
            return try readlink(p, base: try p.base(f.a0, for: path), path: path, buffer: f.a2, size: f.a3)
        }
        d.register(.access) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.access(path, mode: UInt32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        let faccessat: SyscallHandler = { f, p throws(LinuxError) in
            // Linux (do_faccessat): the mode, the flags (faccessat itself has none), the path.
            let flags = f.number == 439 ? f.a3 : 0
            guard UInt32(truncatingIfNeeded: f.a2) & ~UInt32(7) == 0,
                  flags & ~(0x200 | atSymlinkNoFollow | atEmptyPath) == 0 else { throw LinuxError(.EINVAL) }
            let (path, base) = try p.path(f.a1, at: f.a0)
            try fsCall { () throws(Errno) in
                try p.fs.access(path, mode: UInt32(truncatingIfNeeded: f.a2), at: base, followSymlinks: flags & atSymlinkNoFollow == 0)
            }
            return 0
        }
        d.register(.faccessat, faccessat)
        d.register(.faccessat2, faccessat)
        d.register(.getcwd) { f, p throws(LinuxError) in
            let cwd = p.fs.currentDirectoryPath.pathBytes + [0]
            guard UInt64(cwd.count) <= f.a1 else { throw LinuxError(.ERANGE) }
            let dst = try UserMemory.pointer(f.a0, cwd.count, for: .write)
            cwd.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: cwd.count) }
            return Int64(cwd.count)
        }
        d.register(.chdir) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.changeDirectory(path) }
            return 0
        }
        d.register(.fchdir) { f, p throws(LinuxError) in
            let loc = try p.fd(f.a0).location
            try fsCall { () throws(Errno) in try p.fs.changeDirectory(to: loc) }
            return 0
        }
        d.register(.mkdir) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.makeDirectory(path, mode: UInt32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        d.register(.mkdirat) { f, p throws(LinuxError) in
            let (path, base) = try p.path(f.a1, at: f.a0)
            try fsCall { () throws(Errno) in try p.fs.makeDirectory(path, mode: UInt32(truncatingIfNeeded: f.a2), at: base) }
            return 0
        }
        d.register(.rmdir) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.removeDirectory(path) }
            return 0
        }
        d.register(.unlink) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.unlink(path) }
            return 0
        }
        d.register(.unlinkat) { f, p throws(LinuxError) in
            // Linux: the flags, then the path, then dirfd.
            guard f.a2 & ~atRemoveDir == 0 else { throw LinuxError(.EINVAL) }
            let (path, base) = try p.path(f.a1, at: f.a0)
            try fsCall { () throws(Errno) in
                if f.a2 & atRemoveDir != 0 { try p.fs.removeDirectory(path, at: base) } else { try p.fs.unlink(path, at: base) }
            }
            return 0
        }
        d.register(.rename) { f, p throws(LinuxError) in
            let a = try UserMemory.string(f.a0), b = try UserMemory.string(f.a1)
            try fsCall { () throws(Errno) in try p.fs.rename(a, to: b) }
            return 0
        }
        let renameat: SyscallHandler = { f, p throws(LinuxError) in
            if f.number == 316 && f.a4 != 0 { throw LinuxError(.EINVAL) }
            let a = try UserMemory.string(f.a1), b = try UserMemory.string(f.a3)
            let ba = try p.base(f.a0, for: a), bb = try p.base(f.a2, for: b)
            try fsCall { () throws(Errno) in try p.fs.rename(a, to: b, oldAt: ba, newAt: bb) }
            return 0
        }
        d.register(.renameat, renameat)
        d.register(.renameat2, renameat)
        d.register(.link) { f, p throws(LinuxError) in
            let a = try UserMemory.string(f.a0), b = try UserMemory.string(f.a1)
            try fsCall { () throws(Errno) in try p.fs.link(a, to: b) }
            return 0
        }
        d.register(.linkat) { f, p throws(LinuxError) in
            let a = try UserMemory.string(f.a1), b = try UserMemory.string(f.a3)
            let ba = try p.base(f.a0, for: a), bb = try p.base(f.a2, for: b)
            try fsCall { () throws(Errno) in try p.fs.link(a, to: b, existingAt: ba, newAt: bb, followSymlinks: f.a4 & 0x400 != 0) }
            return 0
        }
        d.register(.symlink) { f, p throws(LinuxError) in
            let t = try UserMemory.string(f.a0), path = try UserMemory.string(f.a1)
            try fsCall { () throws(Errno) in try p.fs.makeSymlink(t, at: path) }
            return 0
        }
        d.register(.symlinkat) { f, p throws(LinuxError) in
            let t = try UserMemory.string(f.a0), path = try UserMemory.string(f.a2)
            let base = try p.base(f.a1, for: path)
            try fsCall { () throws(Errno) in try p.fs.makeSymlink(t, at: path, relativeTo: base) }
            return 0
        }
        d.register(.umask) { f, p throws(LinuxError) in Int64(p.fs.setUmask(UInt32(truncatingIfNeeded: f.a0))) }
        d.register(.truncate) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.truncate(path, to: Int64(bitPattern: f.a1)) }
            return 0
        }
        d.register(.ftruncate) { f, p throws(LinuxError) in
            // Linux: a negative length first, then the descriptor, then a writable regular file.
            guard Int64(bitPattern: f.a1) >= 0 else { throw LinuxError(.EINVAL) }
            let file = try p.fd(f.a0)
            guard file.flags.canWrite, try status(of: file).mode & 0o170000 == 0o100000 else { throw LinuxError(.EINVAL) }
            try fsCall { () throws(Errno) in try file.handle.truncate(to: Int64(bitPattern: f.a1)) }
            return 0
        }
        let sync: SyscallHandler = { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            // Pipes, epolls, eventfds and character devices have no fsync: EINVAL, as Linux.
            let kind = try status(of: file).mode & 0o170000
            guard kind == 0o100000 || kind == 0o040000 else { throw LinuxError(.EINVAL) }
            try fsCall { () throws(Errno) in try file.handle.sync() }
            return 0
        }
        d.register(.fsync, sync)
        d.register(.fdatasync, sync)
        d.register(.chmod) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.changeMode(path, mode: UInt32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        d.register(.fchmodat) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a1)
            let base = try p.base(f.a0, for: path)
            try fsCall { () throws(Errno) in try p.fs.changeMode(path, mode: UInt32(truncatingIfNeeded: f.a2), at: base) }
            return 0
        }
        d.register(.dup) { f, p throws(LinuxError) in
            Int64(try p.descriptors.install(try p.fd(f.a0), closeOnExec: false))
        }
        d.register(.dup2) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            if f.a0 == f.a1 { return Int64(f.a1) }
            try p.descriptors.install(file, at: Int32(truncatingIfNeeded: f.a1), closeOnExec: false)
            return Int64(f.a1)
        }
        d.register(.dup3) { f, p throws(LinuxError) in
            // Linux (ksys_dup3): the flags, old == new, newfd past RLIMIT_NOFILE, then oldfd.
            guard f.a2 & ~UInt64(0o2000000) == 0, UInt32(truncatingIfNeeded: f.a0) != UInt32(truncatingIfNeeded: f.a1) else {
                throw LinuxError(.EINVAL)
            }
            guard UInt32(truncatingIfNeeded: f.a1) < UInt32(max(0, p.descriptors.limit)) else { throw LinuxError(.EBADF) }
            let file = try p.fd(f.a0)
            try p.descriptors.install(file, at: Int32(truncatingIfNeeded: f.a1), closeOnExec: f.a2 != 0)
            return Int64(f.a1)
        }
        d.register(.fcntl) { f, p throws(LinuxError) in try fcntl(f, p) }
        // chown family: uid or gid -1 leaves it as it is.
        func owner(_ v: UInt64) -> UInt32? { UInt32(truncatingIfNeeded: v) == UInt32.max ? nil : UInt32(truncatingIfNeeded: v) }
        d.register(.chown) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.changeOwner(path, uid: owner(f.a1), gid: owner(f.a2)) }
            return 0
        }
        d.register(.lchown) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            try fsCall { () throws(Errno) in try p.fs.changeOwner(path, uid: owner(f.a1), gid: owner(f.a2), followSymlinks: false) }
            return 0
        }
        d.register(.fchownat) { f, p throws(LinuxError) in
            guard f.a4 & ~(atSymlinkNoFollow | atEmptyPath) == 0 else { throw LinuxError(.EINVAL) }
            let path = try UserMemory.string(f.a1)
            if path.isEmpty && f.a4 & atEmptyPath != 0 {
                let file = try p.fd(f.a0)
                try fsCall { () throws(Errno) in try p.fs.changeOwner(file.location, uid: owner(f.a2), gid: owner(f.a3)) }
                return 0
            }
            let base = try p.base(f.a0, for: path)
            try fsCall { () throws(Errno) in
                try p.fs.changeOwner(path, uid: owner(f.a2), gid: owner(f.a3), at: base, followSymlinks: f.a4 & atSymlinkNoFollow == 0)
            }
            return 0
        }
        d.register(.utimensat) { f, p throws(LinuxError) in try utimensat(f, p) }
        d.register(.sync) { _, _ throws(LinuxError) in
            Glibc.sync()  // HostFS data lives in the host page cache; MemFS has nothing to write
            return 0
        }
        d.register(.syncfs) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            if let host = file.handle.hostDescriptor { _ = cj_host_syscall(306, UInt64(host), 0, 0, 0, 0, 0) }
            return 0
        }
        d.register(.flock) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            let op = Int32(truncatingIfNeeded: f.a1)
            let kind = op & ~4  // without LOCK_NB
            guard kind == 1 || kind == 2 || kind == 8 else { throw LinuxError(.EINVAL) }  // SH, EX, UN
            // Host files: the host's flock (against other processes), never blocking a
            // kthread; elsewhere only this process could conflict with itself: granted.
            guard let host = file.handle.hostDescriptor, file.location.node.kind == .regular else { return 0 }
            while true {
                let r = cj_host_syscall(73, UInt64(host), UInt64(kind | 4), 0, 0, 0, 0)
                if r == 0 { return 0 }
                guard r == -Int64(EWOULDBLOCK), op & 4 == 0 else { throw LinuxError(Errno(rawValue: Int32(-r))) }
                if UThread.sleep(for: .milliseconds(2)) == .interrupted { try p.checkInterrupted(.restartSys) }
            }
        }
        d.register(.ioctl) { f, p throws(LinuxError) in try ioctl(f, p) }
        d.register(.pipe) { f, p throws(LinuxError) in try pipe(p, f.a0, flags: 0) }
        d.register(.pipe2) { f, p throws(LinuxError) in try pipe(p, f.a0, flags: f.a1) }
        d.register(.sendfile) { f, p throws(LinuxError) in try sendfile(f, p) }
    }

    static func open(_ p: LinuxProcess, dirfd: UInt64, path: UInt64, flags: UInt64, mode: UInt64) throws(LinuxError) -> Int64 {
        // Linux (build_open_how, build_open_flags): the flags before the path. O_PATH keeps
        // only O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC; O_CREAT with O_DIRECTORY is EINVAL;
        // O_TMPFILE needs O_DIRECTORY, no O_CREAT, and write access.
        var raw = Int32(truncatingIfNeeded: flags)
        let oPath = OpenFlags.path.rawValue, oDirectory = OpenFlags.directory.rawValue, oCreate = OpenFlags.create.rawValue
        if raw & oPath != 0 { raw &= oPath | oDirectory | OpenFlags.noFollow.rawValue | OpenFlags.closeOnExec.rawValue }
        if raw & (oDirectory | oCreate) == oDirectory | oCreate { throw LinuxError(.EINVAL) }
        let tmpfile: Int32 = 0o20000000
        if raw & tmpfile != 0 && (raw & (tmpfile | oDirectory | oCreate) != tmpfile | oDirectory || raw & 3 == 0) {
            throw LinuxError(.EINVAL)
        }
        let (s, base) = try p.path(path, at: dirfd)
        var of = OpenFlags(rawValue: raw)
        if !of.contains(.path) { of.insert(.largeFile) }  // as a 64-bit kernel does
        let file = try fsCall { () throws(Errno) in try p.fs.open(s, flags: of, mode: UInt32(truncatingIfNeeded: mode) & 0o7777, at: base) }
        return Int64(try p.descriptors.install(file, closeOnExec: of.contains(.closeOnExec)))
    }

    static func status(of file: OpenFile) throws(LinuxError) -> FileStatus {
        if let host = file.handle.hostDescriptor {
            // A stream passed through from the host: report what it really is; a host
            // file by its descriptor (it may be unlinked, or O_TMPFILE, with no path).
            var st = stat()
            guard fstat(host, &st) == 0 else { throw LinuxError(Errno(rawValue: errno)) }
            var s = FileStatus()
            s.device = UInt64(st.st_dev); s.inode = UInt64(st.st_ino); s.mode = st.st_mode; s.linkCount = UInt64(st.st_nlink)
            s.uid = st.st_uid; s.gid = st.st_gid; s.rdev = UInt64(st.st_rdev); s.size = Int64(st.st_size)
            s.blockSize = Int64(st.st_blksize); s.blocks = Int64(st.st_blocks)
            s.accessTime = Timespec(seconds: Int64(st.st_atim.tv_sec), nanoseconds: Int64(st.st_atim.tv_nsec))
            s.modificationTime = Timespec(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int64(st.st_mtim.tv_nsec))
            s.changeTime = Timespec(seconds: Int64(st.st_ctim.tv_sec), nanoseconds: Int64(st.st_ctim.tv_nsec))
            return s
        }
        return try fsCall { () throws(Errno) in try file.location.node.status() }
    }

    static func readlink(_ p: LinuxProcess, base: Location?, path: String, buffer: UInt64, size: UInt64) throws(LinuxError) -> Int64 {
        let size = Int32(truncatingIfNeeded: size)  // an int in Linux
        guard size > 0 else { throw LinuxError(.EINVAL) }
        let target = path == "/proc/self/exe" ? p.executablePath : try fsCall { () throws(Errno) in try p.fs.readLink(path, at: base) }
        let bytes = Array(target.pathBytes.prefix(Int(size)))
        let dst = try UserMemory.pointer(buffer, bytes.count, for: .write)
        bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return Int64(bytes.count)
    }

    static func vectored(_ f: SyscallFrame, _ p: LinuxProcess, write: Bool) throws(LinuxError) -> Int64 {
        let file = try p.fd(f.a0)
        if let s = file.handle as? any SocketHandle { return try socketVectored(p, file, s, iov: f.a1, count: f.a2, write: write) }
        // The descriptor's mode before the count and the vector (Linux: EBADF even for 0 entries).
        try checkMode(file, write: write)
        return try transferVector(file, iov: f.a1, count: f.a2, write: write, at: nil)
    }

    /// Linux's largest single transfer (MAX_RW_COUNT): a longer count is cut to it.
    static func maxCount(_ count: UInt64) -> Int { Int(min(count, 0x7fff_f000)) }

    /// fdget of a positional call (pread64, pwrite64, preadv, pwritev): a negative offset
    /// before the descriptor, an O_PATH descriptor is none, a stream is ESPIPE.
    static func positionalFile(_ p: LinuxProcess, _ fd: UInt64, offset: UInt64) throws(LinuxError) -> OpenFile {
        guard Int64(bitPattern: offset) >= 0 else { throw LinuxError(.EINVAL) }
        let file = try p.fd(fd)
        guard !file.flags.contains(.path) else { throw LinuxError(.EBADF) }
        guard file.handle.isSeekable else { throw LinuxError(.ESPIPE) }
        return file
    }

    /// vfs_read/vfs_write's first checks: the access mode (EBADF) and a file with no
    /// read or write operation at all (an epoll descriptor: EINVAL).
    static func checkMode(_ file: OpenFile, write: Bool) throws(LinuxError) {
        let flags = file.flags
        guard write ? flags.canWrite : flags.canRead, !flags.contains(.path) else { throw LinuxError(.EBADF) }
        if file.handle is EventPoll { throw LinuxError(.EINVAL) }
    }

    /// What a read or write checks before its buffer's pages, in Linux's order: the mode,
    /// access_ok (EFAULT only for a range past the user half: NULL passes), the offset
    /// (rw_verify_area), then what the file refuses without touching memory.
    static func checkTransfer(_ file: OpenFile, _ address: UInt64, _ count: UInt64, write: Bool, at offset: Int64? = nil) throws(LinuxError) {
        try checkMode(file, write: write)
        guard UserMemory.accessOK(address, count) else { throw LinuxError(.EFAULT) }
        if let offset, offset.addingReportingOverflow(Int64(count)).overflow { throw LinuxError(.EINVAL) }
        try checkUntouched(file, count, write: write)
    }

    /// A file's own refusals that come before any copy: a directory's read (EISDIR), an
    /// eventfd read of fewer than 8 bytes or write of other than 8 (EINVAL).
    static func checkUntouched(_ file: OpenFile, _ count: UInt64, write: Bool) throws(LinuxError) {
        if !write && file.isDirectory && !(file.handle is any SocketHandle) { throw LinuxError(.EISDIR) }
        if file.handle is EventCounter && (write ? count != 8 : count < 8) { throw LinuxError(.EINVAL) }
    }

    /// The iovec loop of readv/writev (`at` nil: the file's offset) and preadv/pwritev
    /// (`at`: from there on), in Linux's order (import_iovec): the count (at most 1024),
    /// the whole array (EFAULT) with no negative length (EINVAL), access_ok on each
    /// buffer, nothing to do for a total of 0, the offset, the file's own refusals; then
    /// each buffer is probed as its turn comes. A short transfer ends the call, and an
    /// error after some bytes returns those bytes.
    static func transferVector(_ file: OpenFile, iov: UInt64, count rawCount: UInt64, write: Bool, at offset: Int64?) throws(LinuxError) -> Int64 {
        guard rawCount <= 1024 else { throw LinuxError(.EINVAL) }
        let count = Int(rawCount)
        if count == 0 { return 0 }
        for i in 0..<count {
            let len = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16 + 8))
            _ = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16))
            guard Int64(bitPattern: len) >= 0 else { throw LinuxError(.EINVAL) }
        }
        var wanted: UInt64 = 0
        for i in 0..<count {
            let base = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16))
            let len = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16 + 8))
            // One entry is cut to MAX_RW_COUNT before access_ok (import_ubuf); several are not.
            guard UserMemory.accessOK(base, count == 1 ? min(len, 0x7fff_f000) : len) else { throw LinuxError(.EFAULT) }
            wanted = min(wanted + len, 0x7fff_f000)
        }
        if wanted == 0 { return 0 }
        if let offset, offset.addingReportingOverflow(Int64(wanted)).overflow { throw LinuxError(.EINVAL) }
        try checkUntouched(file, wanted, write: write)
        var total: Int64 = 0
        for i in 0..<count {
            let base = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16))
            let len = try UserMemory.load(UInt64.self, at: iov + UInt64(i * 16 + 8))
            if len == 0 { continue }
            let buf = try UserMemory.buffer(base, maxCount(len), for: write ? .read : .write, hostCopies: file.hostCopies)
            let at = offset.map { $0 + total }
            let n: Int
            do {
                n = try fsCall { () throws(Errno) -> Int in
                    if let at {
                        return write ? try file.write(from: UnsafeRawBufferPointer(buf), at: at) : try file.read(into: buf, at: at)
                    }
                    return write ? try file.write(from: UnsafeRawBufferPointer(buf)) : try file.read(into: buf)
                }
            } catch {
                if total > 0 { return total }
                throw error
            }
            total += Int64(n)
            if n < buf.count { break }
        }
        return total
    }

    static func fcntl(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let fd = Int32(truncatingIfNeeded: f.a0)
        let file = try p.descriptors.get(fd)
        switch f.a1 {
        case 0, 1030:  // F_DUPFD, F_DUPFD_CLOEXEC
            return Int64(try p.descriptors.install(file, closeOnExec: f.a1 == 1030, minimum: Int32(truncatingIfNeeded: f.a2)))
        case 1: return try p.descriptors.closeOnExec(fd) ? 1 : 0  // F_GETFD
        case 2:  // F_SETFD
            try p.descriptors.setCloseOnExec(fd, f.a2 & 1 != 0)
            return 0
        case 3:  // F_GETFL
            // Linux keeps none of the open-time flags in f_flags (do_dentry_open).
            let openTime: OpenFlags = [.closeOnExec, .create, .exclusive, .noControllingTerminal, .truncate]
            return Int64(file.flags.subtracting(openTime).rawValue)
        case 4:  // F_SETFL: only O_APPEND and O_NONBLOCK change
            // Linux: O_DIRECT on a file that cannot do it (neither regular nor a FIFO) is EINVAL.
            let kind = file.location.node.kind
            if f.a2 & 0o40000 != 0 && kind != .fifo && (kind != .regular || file.location.node is AnonymousNode) {
                throw LinuxError(.EINVAL)
            }
            let settable = OpenFlags.append.rawValue | OpenFlags.nonBlocking.rawValue
            let new = (file.flags.rawValue & ~settable) | (Int32(truncatingIfNeeded: f.a2) & settable)
            file.flags = OpenFlags(rawValue: new)
            return 0
        case 5, 6, 7, 36, 37, 38:  // F_GETLK, F_SETLK, F_SETLKW and their OFD forms
            return try recordLock(file, command: Int32(f.a1), flock: f.a2, p)
        default:
            return try fcntlMore(f, p, file)  // MemfdCalls.swift
        }
    }

    /// POSIX record locks (struct flock: l_type, l_whence, l_start, l_len, l_pid). On a
    /// file backed by the host they are the host's, so they work against other
    /// processes; F_SETLKW then retries F_SETLK with uthread sleeps (a kthread never
    /// blocks in the kernel) and ends with EINTR for a signal. Elsewhere (MemFS, pipes,
    /// devices) only this process can lock, and its own POSIX locks never conflict:
    /// they are granted (OFD locks are treated the same way, a simplification).
    static func recordLock(_ file: OpenFile, command: Int32, flock address: UInt64, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let ofd = command >= 36
        var lock = try UserMemory.load((Int16, Int16, Int32, Int64, Int64, Int32, Int32).self, at: address)
        let (type, whence) = (lock.0, lock.1)
        guard type >= 0, type <= 2, whence >= 0, whence <= 2 else { throw LinuxError(.EINVAL) }
        if ofd && lock.5 != 0 { throw LinuxError(.EINVAL) }  // l_pid must be 0
        let getting = command == 5 || command == 36
        if !getting {
            if type == 0 && !file.flags.canRead { throw LinuxError(.EBADF) }   // F_RDLCK
            if type == 1 && !file.flags.canWrite { throw LinuxError(.EBADF) }  // F_WRLCK
        }
        guard let host = file.handle.hostDescriptor, file.location.node.kind == .regular else {
            if getting { try UserMemory.store(Int16(2), at: address) }  // F_UNLCK: nothing conflicts
            return 0
        }
        // The host descriptor's own offset is not the file's: make SEEK_CUR absolute.
        if whence == 1 { lock.1 = 0; lock.3 += file.offset }
        let blocking = command == 7 || command == 38
        let hostCommand = UInt64(blocking ? command - 1 : command)
        while true {
            let r = withUnsafeMutablePointer(to: &lock) { ptr in
                cj_host_syscall(72, UInt64(host), hostCommand, UInt64(UInt(bitPattern: ptr)), 0, 0, 0)
            }
            if r == 0 {
                if getting {
                    try UserMemory.store(lock.0, at: address)
                    if lock.0 != 2 {
                        try UserMemory.store(lock.1, at: address + 2)
                        try UserMemory.store(lock.3, at: address + 8)
                        try UserMemory.store(lock.4, at: address + 16)
                        try UserMemory.store(lock.5, at: address + 24)
                    }
                }
                return 0
            }
            guard blocking, r == -Int64(EAGAIN) || r == -Int64(EACCES) else { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if UThread.sleep(for: .milliseconds(2)) == .interrupted { try p.checkInterrupted(.restartSys) }
        }
    }

    /// utimensat(dirfd, path, times[2], flags): NULL times = now; UTIME_NOW, UTIME_OMIT;
    /// a NULL path applies to dirfd itself (futimens).
    static func utimensat(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        guard f.a3 & ~atSymlinkNoFollow == 0 else { throw LinuxError(.EINVAL) }
        let utimeNow: Int64 = (1 << 30) - 1, utimeOmit: Int64 = (1 << 30) - 2
        var times: [Timespec?] = [.now, .now]
        var explicit = false
        if f.a2 != 0 {
            for i in 0..<2 {
                // Linux's nsec_valid: UTIME_NOW, UTIME_OMIT or [0, 10^9); any tv_sec.
                let t = try UserTimespec.load(at: f.a2 + UInt64(16 * i))
                switch t.nanoseconds {
                case utimeNow: times[i] = .now
                case utimeOmit: times[i] = nil
                case 0..<UserTimespec.nanosecondsPerSecond:
                    times[i] = Timespec(seconds: t.seconds, nanoseconds: t.nanoseconds)
                    explicit = true
                default: throw LinuxError(.EINVAL)
                }
            }
            if times[0] == nil && times[1] == nil { return 0 }
        }
        if f.a1 == 0 {
            let file = try p.fd(f.a0)
            try fsCall { () throws(Errno) in try p.fs.updateTimes(file.location, access: times[0], modification: times[1], explicit: explicit) }
            return 0
        }
        let path = try UserMemory.string(f.a1)
        let base = try p.base(f.a0, for: path)
        try fsCall { () throws(Errno) in
            try p.fs.updateTimes(path, access: times[0], modification: times[1], explicit: explicit, at: base,
                                 followSymlinks: f.a3 & atSymlinkNoFollow == 0)
        }
        return 0
    }

    static func ioctl(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let file = try p.fd(f.a0)
        if let s = file.handle as? any SocketHandle { return try socketIoctl(p, file, s, request: f.a1, argument: f.a2) }
        if let r = try terminalIoctl(f, p, file) { return r }  // MemfdCalls.swift
        switch f.a1 {
        case 0x5401, 0x5413:  // TCGETS, TIOCGWINSZ: only a host terminal answers
            guard let host = file.handle.hostDescriptor, isatty(host) == 1 else { throw LinuxError(.ENOTTY) }
            let r = cj_host_syscall(16, UInt64(host), f.a1, f.a2, 0, 0, 0)
            if r < 0 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            return r
        case 0x5421:  // FIONBIO
            let on = try UserMemory.load(Int32.self, at: f.a2) != 0
            var flags = file.flags
            if on { flags.insert(.nonBlocking) } else { flags.remove(.nonBlocking) }
            file.flags = flags
            return 0
        case 0x541B:  // FIONREAD
            var n: Int32 = 0
            if let r = file.handle as? PipeReadEnd { n = Int32(r.pipe.available) } else if let size = try? file.handle.size() {
                n = Int32(clamping: max(0, size - file.offset))
            }
            try UserMemory.store(n, at: f.a2)
            return 0
        default:
            throw LinuxError(.ENOTTY)
        }
    }

    static func pipe(_ p: LinuxProcess, _ fds: UInt64, flags: UInt64) throws(LinuxError) -> Int64 {
        let allowed = UInt64(0o2000000 | 0o4000)  // O_CLOEXEC | O_NONBLOCK
        guard flags & ~allowed == 0 else { throw LinuxError(.EINVAL) }
        _ = try UserMemory.pointer(fds, 8, for: .write)
        let (r, w) = Pipe.makePair()
        var extra: OpenFlags = []
        if flags & 0o4000 != 0 { extra.insert(.nonBlocking) }
        let cloexec = flags & 0o2000000 != 0
        let node = AnonymousNode.pipe()  // fstat: a FIFO on pipefs, the same inode for both ends
        let rf = OpenFile(location: Location(node: node, path: "pipe:"), handle: r, flags: extra)
        let wf = OpenFile(location: Location(node: node, path: "pipe:"), handle: w, flags: extra.union(.writeOnly))
        let a = try p.descriptors.install(rf, closeOnExec: cloexec)
        let b: Int32
        do { b = try p.descriptors.install(wf, closeOnExec: cloexec) } catch {
            try? p.descriptors.close(a)
            throw error
        }
        try UserMemory.store(a, at: fds)
        try UserMemory.store(b, at: fds + 4)
        return 0
    }

    static func sendfile(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let out = try p.fd(f.a0), input = try p.fd(f.a1)
        var offset: Int64? = f.a2 == 0 ? nil : try UserMemory.load(Int64.self, at: f.a2)
        let count = Int(clamping: f.a3)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(max(count, 1), 1 << 16), alignment: 16)
        defer { chunk.deallocate() }
        var total = 0
        while total < count {
            let want = min(chunk.count, count - total)
            let view = UnsafeMutableRawBufferPointer(rebasing: chunk[..<want])
            let n = try fsCall { () throws(Errno) -> Int in
                if let o = offset { return try input.read(into: view, at: o) }
                return try input.read(into: view)
            }
            if n == 0 { break }
            let w = try fsCall { () throws(Errno) in try out.write(from: UnsafeRawBufferPointer(rebasing: view[..<n])) }
            total += w
            if let o = offset { offset = o + Int64(w) }
            if w < n { break }
        }
        if let offset { try UserMemory.store(offset, at: f.a2) }
        return Int64(total)
    }
}

extension Handlers {
    static func registerMoreFiles(_ d: Dispatcher) {
        d.register(.statx) { f, p throws(LinuxError) in
            // Linux: the flags (0x6000: both sync types at once), then the path (ENOENT
            // if empty without AT_EMPTY_PATH), dirfd (AT_FDCWD with AT_EMPTY_PATH and no
            // path: the cwd), the copy out.
            let flags = f.a2
            guard flags & ~(statAtFlags | 0x6000) == 0, flags & 0x6000 != 0x6000 else { throw LinuxError(.EINVAL) }
            let path = try statPath(f.a1, flags: flags)
            try storeStatx(try statusAt(p, f.a0, path, flags: flags), at: f.a4)
            return 0
        }
        // statfs/fstatfs: FileDataCalls.swift; extended attributes: XattrCalls.swift.
    }

    /// getname_maybe_null: nil for AT_EMPTY_PATH with a NULL or empty path (the call is
    /// about dirfd itself); otherwise the path (EFAULT, ENAMETOOLONG, ENOENT if empty).
    static func statPath(_ address: UInt64, flags: UInt64) throws(LinuxError) -> String? {
        if flags & atEmptyPath != 0 && address == 0 { return nil }
        let path = try UserMemory.string(address)
        if path.isEmpty {
            if flags & atEmptyPath != 0 { return nil }
            throw LinuxError(.ENOENT)
        }
        return path
    }

    /// The status vfs_statx looks up: `path` from dirfd, or (nil) dirfd itself, the cwd
    /// for AT_FDCWD.
    static func statusAt(_ p: LinuxProcess, _ dirfd: UInt64, _ path: String?, flags: UInt64) throws(LinuxError) -> FileStatus {
        let path = path ?? ""
        if path.isEmpty {
            if Int32(truncatingIfNeeded: dirfd) == atFDCWD {
                return try fsCall { () throws(Errno) in try p.fs.status(".", followSymlinks: true) }
            }
            return try status(of: try p.fd(dirfd))
        }
        let base = try p.base(dirfd, for: path)
        return try fsCall { () throws(Errno) in try p.fs.status(path, at: base, followSymlinks: flags & atSymlinkNoFollow == 0) }
    }

    /// struct statx (256 bytes), every basic field valid.
    static func storeStatx(_ st: FileStatus, at address: UInt64) throws(LinuxError) {
        let p = try UserMemory.pointer(address, 256, for: .write)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
        p.storeBytes(of: UInt32(0x7FF), toByteOffset: 0, as: UInt32.self)  // STATX_BASIC_STATS
        p.storeBytes(of: UInt32(st.blockSize), toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: UInt32(st.linkCount), toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: st.uid, toByteOffset: 20, as: UInt32.self)
        p.storeBytes(of: st.gid, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: st.mode), toByteOffset: 28, as: UInt16.self)
        p.storeBytes(of: st.inode, toByteOffset: 32, as: UInt64.self)
        p.storeBytes(of: UInt64(st.size), toByteOffset: 40, as: UInt64.self)
        p.storeBytes(of: UInt64(st.blocks), toByteOffset: 48, as: UInt64.self)
        for (offset, t) in [(64, st.accessTime), (96, st.changeTime), (112, st.modificationTime)] {
            p.storeBytes(of: t.seconds, toByteOffset: offset, as: Int64.self)
            p.storeBytes(of: UInt32(t.nanoseconds), toByteOffset: offset + 8, as: UInt32.self)
        }
        p.storeBytes(of: UInt32(truncatingIfNeeded: st.rdev >> 8), toByteOffset: 128, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: st.rdev & 0xff), toByteOffset: 132, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: st.device >> 8), toByteOffset: 136, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: st.device & 0xff), toByteOffset: 140, as: UInt32.self)
    }
}
