// ProcFS.swift: /proc as the application should see it. /proc/self and /proc/PID are
// this process as the libOS runs it: exe, cwd, root, fd/ (the emulated descriptors),
// maps (the application's mappings only), status, stat, cmdline, environ, comm, mounts.
// Every other name (cpuinfo, meminfo, sys/, other processes) is the host's /proc.
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

public final class ProcFS: FileSystemInstance, @unchecked Sendable {
    public let deviceID: UInt64 = 0x16
    public let typeName = "proc"
    unowned let process: LinuxProcess
    let host: any FileSystemInstance
    private var rootNode: ProcDirectory!

    /// - Parameter host: the host's /proc (a HostFS rooted there), for everything else.
    public init(process: LinuxProcess, host: any FileSystemInstance) {
        self.process = process
        self.host = host
        rootNode = ProcDirectory(fs: self, inode: 1, entries: { [unowned self] in self.rootEntries() },
                                 fallback: { [unowned self] name throws(Errno) in try self.host.root.lookup(name) },
                                 fallbackList: { [unowned self] in self.hostNames() })
    }

    public var root: any Node { rootNode }

    private func rootEntries() -> [(String, any Node)] {
        let pid = String(process.pid)
        return [("self", ProcLink(fs: self, inode: 2) { pid }), (pid, pidDirectory())]
    }

    private func hostNames() -> [(String, NodeKind)] {
        var names: [(String, NodeKind)] = []
        try? host.root.readDirectory(after: 0) { e in
            if e.name != "." && e.name != ".." && e.name != "self" && e.name != "thread-self" && e.name != String(process.pid) {
                names.append((e.name, e.kind))
            }
            return true
        }
        return names
    }

    func pidDirectory() -> ProcDirectory {
        let p = process
        func text(_ ino: UInt64, _ make: @escaping @Sendable () -> String) -> ProcText {
            ProcText(fs: self, inode: ino) { Array(make().utf8) }
        }
        let entries: [(String, any Node)] = [
            ("exe", ProcLink(fs: self, inode: 10) { p.executablePath }),
            ("cwd", ProcLink(fs: self, inode: 11, object: { p.fs.cwd }) { p.fs.currentDirectoryPath }),
            ("root", ProcLink(fs: self, inode: 12) { "/" }),
            ("fd", ProcDirectory(fs: self, inode: 13, entries: { [unowned self] in self.descriptorLinks() })),
            ("maps", text(14) { p.addressSpace.mapsText(heap: p.programBreak.heap) }),
            ("status", text(15) { ProcFS.status(p) }),
            ("stat", text(16) { ProcFS.stat(p) }),
            ("cmdline", ProcText(fs: self, inode: 17) { p.commandLine.flatMap { Array($0.utf8) + [0] } }),
            ("environ", ProcText(fs: self, inode: 18) { p.environment.flatMap { Array($0.utf8) + [0] } }),
            ("comm", text(19) { p.name + "\n" }),
            ("mounts", text(20) { p.fs.vfs.mountTable.map { "\($0.fileSystem.typeName) \($0.path) \($0.fileSystem.typeName) rw 0 0\n" }.joined() }),
        ]
        return ProcDirectory(fs: self, inode: 3, entries: { entries })
    }

    private func descriptorLinks() -> [(String, any Node)] {
        process.descriptors.snapshot().map { fd, file in
            let target: String
            switch file.location.node.kind {
            case .fifo where file.location.path == "pipe:": target = "pipe:[\((try? file.location.node.status().inode) ?? 0)]"
            case .socket: target = "socket:[\((try? file.location.node.status().inode) ?? 0)]"
            default: target = file.location.path
            }
            let location = file.location
            return (String(fd), ProcLink(fs: self, inode: 1000 + UInt64(fd), object: { location }) { target } as any Node)
        }
    }

    static func status(_ p: LinuxProcess) -> String {
        let uid = getuid(), gid = getgid()
        let t = p.signals
        return """
            Name:\t\(p.name)
            Umask:\t\(String(p.fs.umask, radix: 8).leftPadded(4))
            State:\tR (running)
            Tgid:\t\(p.pid)
            Ngid:\t0
            Pid:\t\(p.pid)
            PPid:\t\(getppid())
            TracerPid:\t0
            Uid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)
            Gid:\t\(gid)\t\(gid)\t\(gid)\t\(gid)
            Threads:\t\(t.threadCount)
            SigPnd:\t\(hex(t.pendingMask, 16))
            SigBlk:\t\(hex(AppThread.current.map { t.blockedMask(of: $0) } ?? 0, 16))
            SigIgn:\t\(hex(t.ignoredMask, 16))
            SigCgt:\t\(hex(t.caughtMask, 16))

            """
    }

    /// The host's stat line with this program's name.
    static func stat(_ p: LinuxProcess) -> String {
        guard let f = fopen("/proc/self/stat", "re") else { return "" }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 1024)
        guard fgets(&buf, Int32(buf.count), f) != nil else { return "" }
        let line = String(cString: buf)
        guard let close = line.lastIndex(of: ")") else { return line }
        return "\(p.pid) (\(p.name)" + line[close...]
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A directory whose entries are computed on each lookup and listing.
final class ProcDirectory: Node, @unchecked Sendable {
    unowned let fs: ProcFS
    let inode: UInt64
    let entries: () -> [(String, any Node)]
    let fallback: ((String) throws(Errno) -> any Node)?
    let fallbackList: (() -> [(String, NodeKind)])?

    init(fs: ProcFS, inode: UInt64, entries: @escaping () -> [(String, any Node)],
         fallback: ((String) throws(Errno) -> any Node)? = nil, fallbackList: (() -> [(String, NodeKind)])? = nil) {
        self.fs = fs
        self.inode = inode
        self.entries = entries
        self.fallback = fallback
        self.fallbackList = fallbackList
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .directory }

    func status() throws(Errno) -> FileStatus {
        var s = FileStatus()
        s.device = fs.deviceID
        s.inode = inode
        s.mode = NodeKind.directory.modeBits | 0o555
        s.linkCount = 2
        s.accessTime = .now
        s.modificationTime = s.accessTime
        s.changeTime = s.accessTime
        return s
    }

    func lookup(_ name: String) throws(Errno) -> any Node {
        if name == "." || name == ".." { return self }
        if let n = entries().first(where: { $0.0 == name })?.1 { return n }
        if let fallback { return try fallback(name) }
        throw .noSuchFileOrDirectory
    }

    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) {
        var all: [(String, NodeKind)] = [(".", .directory), ("..", .directory)]
        all += entries().map { ($0.0, $0.1.kind) }
        all += fallbackList?() ?? []
        for (i, (name, kind)) in all.enumerated() where Int64(i) >= cookie {
            if !body(DirectoryEntry(name: name, inode: inode * 1000 + UInt64(i), kind: kind, nextCookie: Int64(i + 1))) { return }
        }
    }

    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { DirectoryHandle() }
}

/// What opening a /proc directory gives (getdents goes through the node).
final class DirectoryHandle: FileHandle, @unchecked Sendable {
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func size() throws(Errno) -> Int64 { 0 }
}

/// A symlink whose target is computed when read; with `object`, a magic link that
/// leads to that location when followed (an open file's node, the cwd).
final class ProcLink: MagicLink, @unchecked Sendable {
    unowned let fs: ProcFS
    let inode: UInt64
    let target: @Sendable () -> String
    let object: (@Sendable () -> Location?)?

    init(fs: ProcFS, inode: UInt64, object: (@Sendable () -> Location?)? = nil, target: @escaping @Sendable () -> String) {
        self.fs = fs
        self.inode = inode
        self.target = target
        self.object = object
    }

    func linkedLocation() -> Location? { object?() }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .symlink }
    func status() throws(Errno) -> FileStatus {
        var s = FileStatus()
        s.device = fs.deviceID
        s.inode = inode
        s.mode = NodeKind.symlink.modeBits | 0o777
        s.size = Int64(target().utf8.count)
        s.accessTime = .now
        s.modificationTime = s.accessTime
        s.changeTime = s.accessTime
        return s
    }
    func readLink() throws(Errno) -> String { target() }
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { throw .tooManySymbolicLinkLevels }
}

/// A read-only file whose contents are made when it is opened (size 0 in stat, as
/// Linux's /proc files).
final class ProcText: Node, @unchecked Sendable {
    unowned let fs: ProcFS
    let inode: UInt64
    let make: @Sendable () -> [UInt8]

    init(fs: ProcFS, inode: UInt64, make: @escaping @Sendable () -> [UInt8]) {
        self.fs = fs
        self.inode = inode
        self.make = make
    }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .regular }
    func status() throws(Errno) -> FileStatus {
        var s = FileStatus()
        s.device = fs.deviceID
        s.inode = inode
        s.mode = NodeKind.regular.modeBits | 0o444
        s.accessTime = .now
        s.modificationTime = s.accessTime
        s.changeTime = s.accessTime
        return s
    }
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        if flags.canWrite { throw .permissionDenied }
        return SnapshotHandle(make())
    }
}

final class SnapshotHandle: FileHandle, @unchecked Sendable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        guard offset >= 0 else { throw .invalidArgument }
        guard offset < bytes.count else { return 0 }
        let n = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
        return n
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .badFileDescriptor }
    func size() throws(Errno) -> Int64 { Int64(bytes.count) }
}
