// DevFS.swift: /dev: null, zero, full, random, urandom, tty, ptmx; stdin, stdout, stderr
// and fd are symlinks into /proc/self/fd as on Linux (so they are the process's own
// descriptors); the host's standard streams the instance starts with are opened here.
import CUThreads
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A small fixed /dev.
public final class DevFS: FileSystemInstance, @unchecked Sendable {
    public let deviceID: UInt64 = 5
    public let typeName = "devtmpfs"
    private var directory: DevDirectory!

    /// - Parameters:
    ///   - standardStreams: the host descriptors ``standardStream(_:)`` opens.
    ///   - mountPoints: empty directories to mount other file systems on (e.g. "shm").
    public init(standardStreams: [Int32] = [0, 1, 2], mountPoints: [String] = []) {
        directory = DevDirectory(fs: self, streams: standardStreams, mountPoints: mountPoints)
    }

    public var root: any Node { directory }

    /// The host's standard stream `index` (0, 1, 2) as the location the instance opens
    /// its descriptors 0, 1 and 2 from; nil past the streams given.
    public func standardStream(_ index: Int) -> Location? {
        guard directory.streams.indices.contains(index) else { return nil }
        return Location(node: directory.streams[index], path: "/dev/" + ["stdin", "stdout", "stderr"][index])
    }
}

final class DevDirectory: Node, @unchecked Sendable {
    unowned let fs: DevFS
    let entries: [(String, DevNode)]
    let created = Timespec.now
    /// Empty directories (mount points), by name.
    let subdirectories: [(String, DevMountPoint)]
    /// Symlinks into /proc/self/fd.
    let links: [(String, DevLink)]
    /// The host's standard streams (no name: /dev/stdin is a link to /proc/self/fd/0).
    let streams: [DevNode]

    init(fs: DevFS, streams: [Int32], mountPoints: [String] = []) {
        self.fs = fs
        links = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
            .enumerated().map { ($0.element.0, DevLink(fs: fs, inode: 200 + UInt64($0.offset), target: $0.element.1)) }
        self.streams = streams.prefix(3).enumerated().map { DevNode(fs: fs, device: .stream($0.element), inode: 300 + UInt64($0.offset),
                                                                    rdev: 136 << 8 | UInt64($0.offset)) }
        subdirectories = mountPoints.enumerated().map { ($0.element, DevMountPoint(fs: fs, inode: 100 + UInt64($0.offset))) }
        var e: [(String, DevNode)] = []
        var ino: UInt64 = 10
        func add(_ name: String, _ device: DevNode.Device, _ major: UInt64, _ minor: UInt64) {
            ino += 1
            e.append((name, DevNode(fs: fs, device: device, inode: ino, rdev: major << 8 | minor)))
        }
        add("null", .null, 1, 3)
        add("zero", .zero, 1, 5)
        add("full", .full, 1, 7)
        add("random", .random, 1, 8)
        add("urandom", .random, 1, 9)
        add("tty", .tty, 5, 0)
        add("ptmx", .ptmx, 5, 2)
        entries = e
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .directory }

    func status() throws(Errno) -> FileStatus {
        var st = FileStatus()
        st.device = fs.deviceID
        st.inode = 1
        st.mode = NodeKind.directory.modeBits | 0o755
        st.linkCount = 2
        st.accessTime = created
        st.modificationTime = created
        st.changeTime = created
        return st
    }

    func lookup(_ name: String) throws(Errno) -> any Node {
        if name == "." || name == ".." { return self }
        if let d = subdirectories.first(where: { $0.0 == name })?.1 { return d }
        if let l = links.first(where: { $0.0 == name })?.1 { return l }
        guard let n = entries.first(where: { $0.0 == name })?.1 else { throw .noSuchFileOrDirectory }
        return n
    }

    func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node {
        if entries.contains(where: { $0.0 == name }) || links.contains(where: { $0.0 == name }) { throw .fileExists }
        throw .notPermitted
    }

    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) {
        var all = [DirectoryEntry(name: ".", inode: 1, kind: .directory, nextCookie: 1),
                   DirectoryEntry(name: "..", inode: 1, kind: .directory, nextCookie: 2)]
        for (i, (name, node)) in entries.enumerated() {
            all.append(DirectoryEntry(name: name, inode: node.inode, kind: .characterDevice, nextCookie: Int64(i + 3)))
        }
        for (i, (name, node)) in subdirectories.enumerated() {
            all.append(DirectoryEntry(name: name, inode: node.inode, kind: .directory, nextCookie: Int64(entries.count + i + 3)))
        }
        for (i, (name, node)) in links.enumerated() {
            all.append(DirectoryEntry(name: name, inode: node.inode, kind: .symlink,
                                      nextCookie: Int64(entries.count + subdirectories.count + i + 3)))
        }
        for e in all where e.nextCookie > cookie { if !body(e) { return } }
    }

    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { DirectoryHandle() }
}

/// An empty directory of /dev that another file system is mounted on (/dev/shm).
final class DevMountPoint: Node, @unchecked Sendable {
    unowned let fs: DevFS
    let inode: UInt64
    let created = Timespec.now

    init(fs: DevFS, inode: UInt64) {
        self.fs = fs
        self.inode = inode
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .directory }

    func status() throws(Errno) -> FileStatus {
        var st = FileStatus()
        st.device = fs.deviceID
        st.inode = inode
        st.mode = NodeKind.directory.modeBits | 0o1777
        st.linkCount = 2
        st.accessTime = created
        st.modificationTime = created
        st.changeTime = created
        return st
    }

    func lookup(_ name: String) throws(Errno) -> any Node { throw .noSuchFileOrDirectory }
    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) {}
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { DirectoryHandle() }
}

/// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr: symlinks into /proc/self/fd.
final class DevLink: Node, @unchecked Sendable {
    unowned let fs: DevFS
    let inode: UInt64
    let target: String
    let created = Timespec.now

    init(fs: DevFS, inode: UInt64, target: String) {
        self.fs = fs
        self.inode = inode
        self.target = target
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .symlink }

    func status() throws(Errno) -> FileStatus {
        var st = FileStatus()
        st.device = fs.deviceID
        st.inode = inode
        st.mode = NodeKind.symlink.modeBits | 0o777
        st.size = Int64(target.utf8.count)
        st.linkCount = 1
        st.accessTime = created
        st.modificationTime = created
        st.changeTime = created
        return st
    }

    func readLink() throws(Errno) -> String { target }
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { throw .tooManySymbolicLinkLevels }
}

final class DevNode: Node, @unchecked Sendable {
    enum Device {
        case null, zero, full, random, tty, ptmx
        case stream(Int32)
    }
    unowned let fs: DevFS
    let device: Device
    let inode: UInt64
    let rdev: UInt64
    let created = Timespec.now

    init(fs: DevFS, device: Device, inode: UInt64, rdev: UInt64) {
        self.fs = fs
        self.device = device
        self.inode = inode
        self.rdev = rdev
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .characterDevice }

    func status() throws(Errno) -> FileStatus {
        var st = FileStatus()
        st.device = fs.deviceID
        st.inode = inode
        st.mode = NodeKind.characterDevice.modeBits | 0o666
        st.rdev = rdev
        st.blocks = 0
        st.accessTime = created
        st.modificationTime = created
        st.changeTime = created
        return st
    }

    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        switch device {
        case .tty:
            let fd = Glibc.open("/dev/tty", (flags.rawValue & 0o3) | O_CLOEXEC | O_NOCTTY)
            // Linux: no controlling terminal is ENXIO.
            guard fd >= 0 else { throw Errno(rawValue: errno) }
            return HostDescriptorHandle(fd: fd, owned: true)
        case .ptmx:
            // A pseudo-terminal master is the host's (its slave is the host's /dev/pts/N,
            // which the instance mounts from the host).
            let fd = Glibc.open("/dev/ptmx", (flags.rawValue & 0o3) | O_CLOEXEC | O_NOCTTY)
            guard fd >= 0 else { throw Errno(rawValue: errno) }
            return HostDescriptorHandle(fd: fd, owned: true)
        case .stream(let fd):
            return HostDescriptorHandle(fd: fd, owned: false)
        default:
            return SpecialDeviceHandle(device: device)
        }
    }

    func truncate(to size: Int64) throws(Errno) {}
}

/// A /dev character device as Linux's mem.c and random.c make them: an lseek that
/// always answers 0 (null_lseek, noop_llseek), and no poll on null, zero and full
/// (epoll_ctl refuses them with EPERM).
public protocol SpecialDevice: FileHandle {
    var supportsPoll: Bool { get }
}

/// null, zero, full, random and urandom.
final class SpecialDeviceHandle: SpecialDevice, @unchecked Sendable {
    let device: DevNode.Device
    init(device: DevNode.Device) { self.device = device }

    var supportsPoll: Bool { if case .random = device { return true } else { return false } }

    var isSeekable: Bool { true }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        switch device {
        case .null: return 0
        case .random:
            var done = 0
            while done < buffer.count {
                let n = getrandom(buffer.baseAddress! + done, buffer.count - done, 0)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Errno(rawValue: errno)
                }
                done += n
            }
            return done
        default:
            if buffer.count > 0 { buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count) }
            return buffer.count
        }
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if case .full = device { throw .noSpace }
        return buffer.count
    }

    func size() throws(Errno) -> Int64 { 0 }
    func truncate(to size: Int64) throws(Errno) {}
}

/// A host descriptor used as a stream (the std streams, /dev/tty). When it is a regular
/// file or block device (`< in.txt`, `> out.txt`) it stays one: seekable, pread/pwrite,
/// ftruncate, with the offset kept by the host description it shares with the shell.
public final class HostDescriptorHandle: FileHandle, @unchecked Sendable {
    public let fd: Int32
    let owned: Bool
    /// A regular file or block device behind the descriptor.
    let isFile: Bool

    public init(fd: Int32, owned: Bool) {
        self.fd = fd
        self.owned = owned
        var st = stat()
        let type = fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0
        isFile = type == S_IFREG || type == S_IFBLK
    }

    public var isSeekable: Bool { isFile }
    public var keepsOffset: Bool { isFile }

    public func seek(_ offset: Int64, whence: Int32) throws(Errno) -> Int64 {
        Int64(try SystemCall.retrying { lseek(fd, off_t(offset), whence) }.get())
    }

    public func truncate(to size: Int64) throws(Errno) {
        guard isFile else { throw .invalidArgument }
        _ = try SystemCall.retrying { ftruncate(fd, off_t(size)) }.get()
    }

    /// A non-blocking read or write on a stream: EAGAIN unless the host says it is ready
    /// (the host description may be blocking, and is shared: O_NONBLOCK and FIONBIO set
    /// on this descriptor stay the libOS's, as a terminal's master read after FIONBIO).
    private func wouldBlock(_ events: Int16, nonBlocking: Bool) -> Bool {
        guard nonBlocking && !isFile else { return false }
        var p = pollfd(fd: fd, events: events, revents: 0)
        return Glibc.poll(&p, 1, 0) == 0
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if wouldBlock(Int16(POLLIN), nonBlocking: nonBlocking) { throw .wouldBlock }
        return try SystemCall.retrying {
            isFile && offset >= 0 ? Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
                                  : Glibc.read(fd, buffer.baseAddress, buffer.count)
        }.get()
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if wouldBlock(Int16(POLLOUT), nonBlocking: nonBlocking) { throw .wouldBlock }
        return try SystemCall.retrying {
            isFile && offset >= 0 ? Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
                                  : Glibc.write(fd, buffer.baseAddress, buffer.count)
        }.get()
    }

    public func size() throws(Errno) -> Int64 {
        var st = stat()
        guard isFile, fstat(fd, &st) == 0 else { return 0 }
        return Int64(st.st_size)
    }
    public func sync() throws(Errno) { if isFile { _ = try SystemCall.retrying { fsync(fd) }.get() } }
    public func close() {
        if owned {
            if !isFile { HostStreamReadiness.forget(fd) }
            Glibc.close(fd)
        }
    }

    /// A file is always ready (as Linux's regular files); a stream (pipe, terminal,
    /// socket) is what the host's poll says, hang-up and error included: a pipe whose
    /// writers are gone reports POLLHUP even to a poll for no events.
    public var readiness: Readiness {
        guard !isFile else { return [.readable, .writable] }
        var p = pollfd(fd: fd, events: Int16(POLLIN | POLLOUT | 0x2000), revents: 0)  // POLLRDHUP
        let n = Glibc.poll(&p, 1, 0)
        // A descriptor the host cannot poll stays always ready, as before.
        if n < 0 || p.revents & Int16(POLLNVAL) != 0 { return [.readable, .writable] }
        return Readiness(rawValue: UInt32(UInt16(bitPattern: p.revents)))
    }

    public func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int {
        guard !isFile else { return 0 }
        return HostStreamReadiness.observers(for: fd).add(observer)
    }

    public func removeReadinessObserver(_ token: Int) {
        guard !isFile, token != 0 else { return }
        HostStreamReadiness.observers(for: fd).remove(token)
    }
    public var hostDescriptor: Int32? { fd }
    public func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? {
        HostDescriptorHandle(fd: try HostFS.reopen(fd, flags), owned: true)
    }
}

/// Readiness observers of host stream descriptors, one set per host descriptor (the
/// handles of fd 0 and of a later open of /dev/stdin share it), told by HostWatcher
/// whenever the host's readiness of the descriptor may have changed.
enum HostStreamReadiness {
    private static let table = Locked<[Int32: ReadinessObservers]>([:])

    static func observers(for fd: Int32) -> ReadinessObservers {
        let (observers, new) = table.withLock { t -> (ReadinessObservers, Bool) in
            if let o = t[fd] { return (o, false) }
            let o = ReadinessObservers()
            t[fd] = o
            return (o, true)
        }
        if new { HostWatcher.shared.watch(fd) { [weak observers] in observers?.notify([]) } }
        return observers
    }

    /// Before an owned descriptor is closed.
    static func forget(_ fd: Int32) {
        guard table.withLock({ $0.removeValue(forKey: fd) }) != nil else { return }
        HostWatcher.shared.unwatch(fd)
    }
}
