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

    /// - Parameters:
    ///   - process: the process whose /proc/self (and /proc/PID) this shows.
    ///   - host: the host's /proc (a HostFS rooted there), for everything else.
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
            ("cmdline", ProcText(fs: self, inode: 17) { p.commandLine.flatMap { $0 + [0] } }),
            ("environ", ProcText(fs: self, inode: 18) { p.environment.flatMap { $0 + [0] } }),
            ("comm", text(19) { p.name + "\n" }),
            ("mounts", text(20) { ProcFS.mounts(p) }),
            ("net", netDirectory()),
        ]
        return ProcDirectory(fs: self, inode: 3, entries: { entries })
    }

    private func descriptorLinks() -> [(String, any Node)] {
        process.descriptors.snapshot().map { fd, file in
            let target: String
            switch file.location.node.kind {
            case .fifo where file.location.path == "pipe:": target = "pipe:[\((try? file.location.node.status().inode) ?? 0)]"
            case .socket: target = "socket:[\((try? file.location.node.status().inode) ?? 0)]"
            case .characterDevice where file.handle.hostDescriptor != nil:
                // A standard stream passed through from the host: what it really is.
                target = ProcFS.hostLink(file.handle.hostDescriptor!) ?? file.location.path
            default: target = file.location.path
            }
            let location = file.location
            // The mode is read when the link is stat'ed, not here: listing /proc/self/fd
            // holds the lock of the directory's own open file, one of these.
            let mode: @Sendable () -> UInt32 = { [weak file] in
                guard let flags = file?.flags else { return 0o500 }
                return (flags.canRead ? 0o400 : 0) | (flags.canWrite ? 0o200 : 0) | 0o100
            }
            return (String(fd), ProcLink(fs: self, inode: 1000 + UInt64(fd), object: { location }, openMode: mode,
                                         file: { [weak file] in file }) { target } as any Node)
        }
    }

    /// The stat of a /proc node: times are "now", as Linux's are for these.
    func nodeStatus(inode: UInt64, mode: UInt32, size: Int64 = 0, links: UInt64 = 1) -> FileStatus {
        var s = FileStatus()
        s.device = deviceID
        s.inode = inode
        s.mode = mode
        s.size = size
        s.linkCount = links
        s.accessTime = .now
        s.modificationTime = s.accessTime
        s.changeTime = s.accessTime
        return s
    }

    /// The lines of a host text file (/proc/self/maps, mounts, stat).
    static func hostLines(_ path: String) -> [String] {
        guard let f = fopen(path, "re") else { return [] }
        defer { fclose(f) }
        var lines: [String] = []
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        while getline(&line, &cap, f) > 0, let line { lines.append(String(cString: line).trimmingSuffix("\n")) }
        free(line)
        return lines
    }

    static func hostLink(_ fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    /// The VFS's mount table; a host directory mounted shows the host's device and type
    /// for it (the host mount that holds its root).
    static func mounts(_ p: LinuxProcess) -> String {
        let host = hostLines("/proc/self/mounts").compactMap { l -> (device: String, point: String, type: String, options: String)? in
            let parts = l.split(separator: " ")
            return parts.count >= 4 ? (String(parts[0]), String(parts[1]), String(parts[2]), String(parts[3])) : nil
        }
        return p.fs.vfs.mountTable.map { m -> String in
            if let h = m.fileSystem as? HostFS,
               let e = host.filter({ h.hostRoot == $0.point || h.hostRoot.hasPrefix($0.point == "/" ? "/" : $0.point + "/") })
                   .max(by: { $0.point.count < $1.point.count }) {
                return "\(e.device) \(m.path) \(e.type) \(e.options) 0 0\n"
            }
            return "\(m.fileSystem.typeName) \(m.path) \(m.fileSystem.typeName) rw 0 0\n"
        }.joined()
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
        guard let line = hostLines("/proc/self/stat").first else { return "" }
        guard let close = line.lastIndex(of: ")") else { return line + "\n" }
        return "\(p.pid) (\(p.name)" + line[close...] + "\n"
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
        fs.nodeStatus(inode: inode, mode: NodeKind.directory.modeBits | 0o555, links: 2)
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
        // In a directory of numbered entries only (fd/, lowest first) entry N sits at
        // position N + 2, as Linux's proc_readfd has it, so closing descriptors between
        // reads of the listing skips none of the rest.
        let numbered = all.dropFirst(2).allSatisfy { Int64($0.0) != nil }
        for (i, (name, kind)) in all.enumerated() {
            let position = numbered && i >= 2 ? Int64(name)! + 2 : Int64(i)
            guard position >= cookie else { continue }
            if !body(DirectoryEntry(name: name, inode: inode * 1000 + UInt64(i), kind: kind, nextCookie: position + 1)) { return }
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
    /// fd/N links: the permission bits say how the file is open (r-x, -wx, rwx), size 64.
    let openMode: (@Sendable () -> UInt32)?
    /// fd/N links: the open file description, which opening the link opens again.
    let file: (@Sendable () -> OpenFile?)?

    init(fs: ProcFS, inode: UInt64, object: (@Sendable () -> Location?)? = nil, openMode: (@Sendable () -> UInt32)? = nil,
         file: (@Sendable () -> OpenFile?)? = nil, target: @escaping @Sendable () -> String) {
        self.fs = fs
        self.inode = inode
        self.target = target
        self.object = object
        self.openMode = openMode
        self.file = file
    }

    func linkedLocation() -> Location? { object?() }
    func openFile() -> OpenFile? { file?() }

    var fileSystem: any FileSystemInstance { fs }
    var kind: NodeKind { .symlink }
    func status() throws(Errno) -> FileStatus {
        fs.nodeStatus(inode: inode, mode: NodeKind.symlink.modeBits | (openMode?() ?? 0o777),
                      size: openMode == nil ? Int64(target().utf8.count) : 64)
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
    func status() throws(Errno) -> FileStatus { fs.nodeStatus(inode: inode, mode: NodeKind.regular.modeBits | 0o444) }
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
