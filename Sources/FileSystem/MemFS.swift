// MemFS.swift: an in-memory file system (tmpfs): sparse regular files, directories with
// stable getdents cookies, symlinks, hard links, Linux's rename and unlink rules.
import OrderedCollections
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// An in-memory file system. One lock guards its namespace and data; every operation
/// is short and never parks while holding it.
public final class MemFS: FileSystemInstance, @unchecked Sendable {
    // Tunables: the page size of file data (holes are whole missing pages).
    static let pageSize = 4096

    /// State every node shares and keeps alive (an open file may outlive the mount).
    let core: MemFSCore
    public var deviceID: UInt64 { core.deviceID }
    public let typeName = "tmpfs"
    private var rootDirectory: MemDirectory!

    /// - Parameters:
    ///   - mode: permission bits of the root (tmpfs's default is 1777).
    ///   - uid: the root directory's owner.
    ///   - gid: the root directory's group.
    ///   - deviceID: st_dev reported for every node.
    public init(mode: UInt32 = 0o1777, uid: UInt32 = 0, gid: UInt32 = 0, deviceID: UInt64 = MemFS.nextDeviceID()) {
        core = MemFSCore(deviceID: deviceID)
        rootDirectory = MemDirectory(fs: self, mode: mode, uid: uid, gid: gid, parent: nil)
    }

    public var root: any Node { rootDirectory }

    private static let deviceCounter = SpinLock()
    nonisolated(unsafe) private static var lastDevice: UInt64 = 0x2000

    /// A fresh anonymous device number (like tmpfs's 0:N).
    public static func nextDeviceID() -> UInt64 {
        deviceCounter.withLock {
            lastDevice += 1
            return lastDevice
        }
    }
}

/// The lock, page allocator and inode counter of one MemFS.
final class MemFSCore: @unchecked Sendable {
    let lock = SpinLock()
    /// File data pages; used with `lock` held.
    let pages = PageAllocator(pageSize: MemFS.pageSize)
    let deviceID: UInt64
    private let nextInode = Atomic<UInt64>(1)

    init(deviceID: UInt64) { self.deviceID = deviceID }

    func allocateInode() -> UInt64 { nextInode.add(1, ordering: .relaxed).oldValue }
}

class MemNode: Node, @unchecked Sendable {
    let core: MemFSCore
    /// The file system, for identity (EXDEV checks) while it is mounted.
    weak var owner: MemFS?
    let inode: UInt64
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var linkCount: UInt64
    var accessTime: Timespec
    var modificationTime: Timespec
    var changeTime: Timespec
    /// Extended attributes (MemXattr.swift), under `core.lock`.
    var xattrs: [String: [UInt8]] = [:]

    init(fs: MemFS, kind: NodeKind, mode: UInt32, uid: UInt32, gid: UInt32) {
        core = fs.core
        owner = fs
        inode = fs.core.allocateInode()
        self.mode = kind.modeBits | (mode & 0o7777)
        self.uid = uid
        self.gid = gid
        linkCount = kind == .directory ? 2 : 1
        let now = Timespec.now
        accessTime = now
        modificationTime = now
        changeTime = now
    }

    var fileSystem: any FileSystemInstance { owner! }
    /// The owning MemFS; nodes are only created while it is alive.
    var fs: MemFS { owner! }
    var kind: NodeKind { NodeKind(modeBits: mode)! }

    /// Called with the lock held.
    var dataSize: Int64 { 0 }
    var allocatedBlocks: Int64 { 0 }

    func status() throws(Errno) -> FileStatus {
        core.lock.withLock {
            var st = FileStatus()
            st.device = core.deviceID
            st.inode = inode
            st.mode = mode
            st.linkCount = linkCount
            st.uid = uid
            st.gid = gid
            st.size = dataSize
            st.blocks = allocatedBlocks
            st.accessTime = accessTime
            st.modificationTime = modificationTime
            st.changeTime = changeTime
            return st
        }
    }

    func setMode(_ newMode: UInt32) throws(Errno) {
        core.lock.withLock {
            mode = (mode & 0o170000) | (newMode & 0o7777)
            changeTime = .now
        }
    }

    func setOwner(uid: UInt32?, gid: UInt32?) throws(Errno) {
        core.lock.withLock {
            if let uid { self.uid = uid }
            if let gid { self.gid = gid }
            changeTime = .now
        }
    }

    func setTimes(access: Timespec?, modification: Timespec?) throws(Errno) {
        core.lock.withLock {
            if let access { accessTime = access }
            if let modification { modificationTime = modification }
            changeTime = .now
        }
    }

    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { throw .operationNotSupportedByDevice }

    // Every Node requirement is implemented here with the errno Linux gives for a node
    // kind that lacks it, so subclasses override (protocol-extension defaults would
    // not dispatch to subclass methods).
    func lookup(_ name: String) throws(Errno) -> any Node { throw .notDirectory }
    func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node { throw .notDirectory }
    func makeDirectory(_ name: String, mode: UInt32, credentials: Credentials) throws(Errno) { throw .notDirectory }
    func makeSymlink(_ name: String, target: String, credentials: Credentials) throws(Errno) { throw .notDirectory }
    func link(_ name: String, to node: any Node) throws(Errno) { throw .notDirectory }
    func unlink(_ name: String) throws(Errno) { throw .notDirectory }
    func removeDirectory(_ name: String) throws(Errno) { throw .notDirectory }
    func rename(_ name: String, to directory: any Node, as newName: String) throws(Errno) { throw .notDirectory }
    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) { throw .notDirectory }
    func readLink() throws(Errno) -> String { throw .invalidArgument }
    func truncate(to size: Int64) throws(Errno) { throw kind == .directory ? .isDirectory : .invalidArgument }
}

final class MemSymlink: MemNode, @unchecked Sendable {
    let target: String
    init(fs: MemFS, target: String, uid: UInt32, gid: UInt32) {
        self.target = target
        super.init(fs: fs, kind: .symlink, mode: 0o777, uid: uid, gid: gid)
    }
    override var dataSize: Int64 { Int64(target.pathByteCount) }
    override func readLink() throws(Errno) -> String { target }
}

final class MemFile: MemNode, @unchecked Sendable {
    /// Present pages; a missing page is a hole and reads as zeros.
    var pages: [Int64: UnsafeMutableRawPointer] = [:]
    var size: Int64 = 0

    deinit { for p in pages.values { core.pages.free(p) } }

    override var dataSize: Int64 { size }
    override var allocatedBlocks: Int64 { Int64(pages.count) * Int64(MemFS.pageSize / 512) }

    override func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { MemFileHandle(file: self) }

    override func truncate(to newSize: Int64) throws(Errno) {
        guard newSize >= 0 else { throw .invalidArgument }
        core.lock.withLock { resize(newSize) }
    }

    /// With the lock held.
    func resize(_ newSize: Int64) {
        let page = Int64(MemFS.pageSize)
        if newSize < size {
            let keep = (newSize + page - 1) / page
            for (i, p) in pages where i >= keep {
                core.pages.free(p)
                pages.removeValue(forKey: i)
            }
            // Zero the tail of the last kept page, so a later extension reads zeros.
            if newSize % page != 0, let p = pages[newSize / page] {
                let from = Int(newSize % page)
                (p + from).initializeMemory(as: UInt8.self, repeating: 0, count: MemFS.pageSize - from)
            }
        }
        if newSize != size {
            size = newSize
            modificationTime = .now
            changeTime = modificationTime
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) -> Int {
        core.lock.withLock {
            guard offset < size, buffer.count > 0 else { return 0 }
            let n = Int(min(Int64(buffer.count), size - offset))
            let page = Int64(MemFS.pageSize)
            var done = 0
            while done < n {
                let pos = offset + Int64(done)
                let index = pos / page, within = Int(pos % page)
                let chunk = min(n - done, MemFS.pageSize - within)
                let dst = buffer.baseAddress! + done
                if let p = pages[index] {
                    dst.copyMemory(from: p + within, byteCount: chunk)
                } else {
                    dst.initializeMemory(as: UInt8.self, repeating: 0, count: chunk)
                }
                done += chunk
            }
            accessTime = .now
            return n
        }
    }

    func write(from buffer: UnsafeRawBufferPointer, at requested: Int64?, maxFileSize: Int64) throws(Errno) -> Int {
        try core.lock.withLock { () throws(Errno) -> Int in
            let offset = requested ?? size  // nil: append at the end, atomically
            guard buffer.count > 0 else { return 0 }
            guard offset <= maxFileSize - Int64(buffer.count) else { throw .fileTooLarge }
            let page = Int64(MemFS.pageSize)
            var done = 0
            while done < buffer.count {
                let pos = offset + Int64(done)
                let index = pos / page, within = Int(pos % page)
                let chunk = min(buffer.count - done, MemFS.pageSize - within)
                let p: UnsafeMutableRawPointer
                if let existing = pages[index] {
                    p = existing
                } else {
                    // A page the write covers completely need not be zeroed first.
                    p = core.pages.allocate(zeroed: chunk < MemFS.pageSize)
                    pages[index] = p
                }
                (p + within).copyMemory(from: buffer.baseAddress! + done, byteCount: chunk)
                done += chunk
            }
            size = max(size, offset + Int64(buffer.count))
            modificationTime = .now
            changeTime = modificationTime
            return buffer.count
        }
    }
}

final class MemFileHandle: FileHandle, @unchecked Sendable {
    let file: MemFile
    init(file: MemFile) { self.file = file }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        guard offset >= 0 else { throw .invalidArgument }
        return file.read(into: buffer, at: offset)
    }

    /// `offset` < 0 appends.
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try file.write(from: buffer, at: offset < 0 ? nil : offset, maxFileSize: Int64.max / 2)
    }

    func size() throws(Errno) -> Int64 { file.core.lock.withLock { file.size } }
    func truncate(to size: Int64) throws(Errno) { try file.truncate(to: size) }
}

final class MemDirectory: MemNode, @unchecked Sendable {
    struct Entry {
        var node: MemNode
        var cookie: Int64
    }
    var entries: OrderedDictionary<String, Entry> = [:]
    var nextCookie: Int64 = 3
    /// nil for the root (its ".." is itself). Weak: a child does not keep its parent.
    weak var parent: MemDirectory?
    /// Removed with rmdir while something still refers to it.
    var isDead = false

    init(fs: MemFS, mode: UInt32, uid: UInt32, gid: UInt32, parent: MemDirectory?) {
        self.parent = parent
        super.init(fs: fs, kind: .directory, mode: mode, uid: uid, gid: gid)
    }

    override var dataSize: Int64 { Int64(40 + 20 * entries.count) }

    override func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { DirectoryHandle() }

    override func lookup(_ name: String) throws(Errno) -> any Node {
        try core.lock.withLock { () throws(Errno) -> any Node in
            if isDead { throw .noSuchFileOrDirectory }
            if name == "." { return self }
            if name == ".." { return parent ?? self }
            guard let e = entries[name] else { throw .noSuchFileOrDirectory }
            return e.node
        }
    }

    /// With the lock held: a name that may be created here.
    private func checkNew(_ name: String) throws(Errno) {
        if isDead { throw .noSuchFileOrDirectory }
        if name == "." || name == ".." || entries[name] != nil { throw .fileExists }
    }

    private func insert(_ name: String, _ node: MemNode) {
        entries[name] = Entry(node: node, cookie: nextCookie)
        nextCookie += 1
        modificationTime = .now
        changeTime = modificationTime
    }

    override func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node {
        try core.lock.withLock { () throws(Errno) -> any Node in
            try checkNew(name)
            let node: MemNode
            switch kind {
            case .regular: node = MemFile(fs: fs, kind: .regular, mode: mode, uid: credentials.uid, gid: credentials.gid)
            case .fifo: node = MemFIFO(fs: fs, mode: mode, uid: credentials.uid, gid: credentials.gid)
            case .socket: node = MemSocketNode(fs: fs, kind: .socket, mode: mode, uid: credentials.uid, gid: credentials.gid)
            default: throw .notPermitted
            }
            insert(name, node)
            return node
        }
    }

    /// An unnamed regular file in this directory (O_TMPFILE).
    func createUnnamed(mode: UInt32, credentials: Credentials) throws(Errno) -> MemFile {
        try core.lock.withLock { () throws(Errno) -> MemFile in
            if isDead { throw .noSuchFileOrDirectory }
            let f = MemFile(fs: fs, kind: .regular, mode: mode, uid: credentials.uid, gid: credentials.gid)
            f.linkCount = 0
            return f
        }
    }

    override func makeDirectory(_ name: String, mode: UInt32, credentials: Credentials) throws(Errno) {
        try core.lock.withLock { () throws(Errno) in
            try checkNew(name)
            insert(name, MemDirectory(fs: fs, mode: mode, uid: credentials.uid, gid: credentials.gid, parent: self))
            linkCount += 1
        }
    }

    override func makeSymlink(_ name: String, target: String, credentials: Credentials) throws(Errno) {
        try core.lock.withLock { () throws(Errno) in
            try checkNew(name)
            insert(name, MemSymlink(fs: fs, target: target, uid: credentials.uid, gid: credentials.gid))
        }
    }

    override func link(_ name: String, to node: any Node) throws(Errno) {
        guard let target = node as? MemNode, target.core === core else { throw .improperLink }
        try core.lock.withLock { () throws(Errno) in
            if target.kind == .directory { throw .notPermitted }
            if target.linkCount == 0, !(target is MemFile) { throw .noSuchFileOrDirectory }
            try checkNew(name)
            insert(name, target)
            target.linkCount += 1
            target.changeTime = .now
        }
    }

    override func unlink(_ name: String) throws(Errno) {
        try core.lock.withLock { () throws(Errno) in
            if isDead { throw .noSuchFileOrDirectory }
            if name == "." || name == ".." { throw .isDirectory }
            guard let e = entries[name] else { throw .noSuchFileOrDirectory }
            if e.node.kind == .directory { throw .isDirectory }
            entries.removeValue(forKey: name)
            e.node.linkCount -= 1
            e.node.changeTime = .now
            modificationTime = .now
            changeTime = modificationTime
        }
    }

    override func removeDirectory(_ name: String) throws(Errno) {
        try core.lock.withLock { () throws(Errno) in
            if isDead { throw .noSuchFileOrDirectory }
            if name == "." { throw .invalidArgument }
            if name == ".." { throw .directoryNotEmpty }
            guard let e = entries[name] else { throw .noSuchFileOrDirectory }
            guard let dir = e.node as? MemDirectory else { throw .notDirectory }
            guard dir.entries.isEmpty else { throw .directoryNotEmpty }
            entries.removeValue(forKey: name)
            dir.isDead = true
            dir.linkCount = 0
            linkCount -= 1
            modificationTime = .now
            changeTime = modificationTime
        }
    }

    override func rename(_ name: String, to directory: any Node, as newName: String) throws(Errno) {
        guard let dest = directory as? MemDirectory, dest.core === core else { throw .improperLink }
        try core.lock.withLock { () throws(Errno) in
            if isDead || dest.isDead { throw .noSuchFileOrDirectory }
            if name == "." || name == ".." || newName == "." || newName == ".." { throw .resourceBusy }
            guard let source = entries[name] else { throw .noSuchFileOrDirectory }
            let movingDir = source.node as? MemDirectory
            // A directory cannot move into itself or below itself.
            if let movingDir {
                var d: MemDirectory? = dest
                while let cur = d {
                    if cur === movingDir { throw .invalidArgument }
                    d = cur.parent
                }
            }
            if let existing = dest.entries[newName] {
                if existing.node === source.node { return }  // same inode: nothing to do
                // Linux (lock_rename's trap): a target that is an ancestor of the source
                // is ENOTEMPTY, before any check of the kinds.
                if let targetDir = existing.node as? MemDirectory {
                    var d: MemDirectory? = self
                    while let cur = d {
                        if cur === targetDir { throw .directoryNotEmpty }
                        d = cur.parent
                    }
                }
                if let existingDir = existing.node as? MemDirectory {
                    guard movingDir != nil else { throw .isDirectory }
                    guard existingDir.entries.isEmpty else { throw .directoryNotEmpty }
                    existingDir.isDead = true
                    existingDir.linkCount = 0
                    dest.linkCount -= 1
                } else {
                    guard movingDir == nil else { throw .notDirectory }
                    existing.node.linkCount -= 1
                    existing.node.changeTime = .now
                }
                dest.entries.removeValue(forKey: newName)
            }
            entries.removeValue(forKey: name)
            dest.insert(newName, source.node)
            if let movingDir, dest !== self {
                movingDir.parent = dest
                linkCount -= 1
                dest.linkCount += 1
            }
            source.node.changeTime = .now
            modificationTime = .now
            changeTime = modificationTime
        }
    }

    override func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) {
        let snapshot: [DirectoryEntry] = try core.lock.withLock { () throws(Errno) -> [DirectoryEntry] in
            if isDead { throw .noSuchFileOrDirectory }
            var out: [DirectoryEntry] = []
            if cookie < 1 { out.append(DirectoryEntry(name: ".", inode: inode, kind: .directory, nextCookie: 1)) }
            if cookie < 2 {
                out.append(DirectoryEntry(name: "..", inode: (parent ?? self).inode, kind: .directory, nextCookie: 2))
            }
            // Cookies grow with insertion order: binary-search the first one after `cookie`.
            let values = entries.values
            var lo = 0, hi = values.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if values[mid].cookie <= cookie { lo = mid + 1 } else { hi = mid }
            }
            for i in lo..<values.count {
                let e = values[i]
                out.append(DirectoryEntry(name: entries.keys[i], inode: e.node.inode, kind: e.node.kind, nextCookie: e.cookie))
            }
            accessTime = .now
            return out
        }
        for e in snapshot where !body(e) { break }
    }
}

/// A FIFO made with mknod: each open gets an end of the node's one pipe.
final class MemFIFO: MemNode, @unchecked Sendable {
    let pipe = Pipe()
    init(fs: MemFS, mode: UInt32, uid: UInt32, gid: UInt32) {
        super.init(fs: fs, kind: .fifo, mode: mode, uid: uid, gid: gid)
    }
    override func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        try pipe.openEnd(flags)
    }
}

/// A socket's name (bind on an AF_UNIX socket): the socket layer finds its socket by
/// the inode; opening it is ENXIO, as on Linux.
final class MemSocketNode: MemNode, @unchecked Sendable {
    override func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { throw .noSuchAddressOrDevice }
}

/// Directories are read through getdents, never read(2).
final class DirectoryHandle: FileHandle, @unchecked Sendable {
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .isDirectory }
    func size() throws(Errno) -> Int64 { 0 }
}

/// File-data pages carved from large prefaulted mappings (one page fault per 2 MiB
/// instead of one per page), recycled through a free list. Used under the MemFS lock;
/// the memory returns to the host when the file system goes away.
final class PageAllocator: @unchecked Sendable {
    // Tunables: mapping size; large enough for transparent huge pages.
    static let regionSize = 2 << 20

    let pageSize: Int
    private var free: [UnsafeMutableRawPointer] = []
    private var regions: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0

    init(pageSize: Int) { self.pageSize = pageSize }

    deinit { for r in regions { munmap(r, Self.regionSize) } }

    /// A page; zero-filled when `zeroed` (fresh mapping pages always are).
    func allocate(zeroed: Bool) -> UnsafeMutableRawPointer {
        if let p = free.popLast() {
            if zeroed { p.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize) }
            return p
        }
        if remaining == 0 {
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE
            guard let r = mmap(nil, Self.regionSize, PROT_READ | PROT_WRITE, flags, -1, 0), r != MAP_FAILED else {
                // Out of memory: fall back to the heap, zeroed.
                let p = UnsafeMutableRawPointer.allocate(byteCount: pageSize, alignment: pageSize)
                p.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize)
                return p
            }
            regions.append(r)
            cursor = r
            remaining = Self.regionSize / pageSize
        }
        let p = cursor!
        cursor = p + pageSize
        remaining -= 1
        return p
    }

    func free(_ p: UnsafeMutableRawPointer) { free.append(p) }
}
