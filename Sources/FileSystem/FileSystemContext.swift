// FileSystemContext.swift: the file calls of one process (open, stat, mkdir, unlink,
// rename, link, symlink, readlink, access, truncate, chdir, chmod ...), with its cwd,
// umask and credentials, following Linux's errno rules.
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A process's view of the VFS. Every `*at` call takes the directory a relative path
/// starts from (a directory descriptor's location); nil means the cwd.
public final class FileSystemContext: @unchecked Sendable {
    public let vfs: VFS
    private let lock = SpinLock()
    private var _cwd: Location
    private var _umask: UInt32 = 0o022
    public var credentials: Credentials

    public init(vfs: VFS, credentials: Credentials = .host, cwd: String = "/") throws(Errno) {
        self.vfs = vfs
        self.credentials = credentials
        _cwd = vfs.root
        try changeDirectory(cwd)
    }

    public var cwd: Location { lock.withLock { _cwd } }

    /// umask(2): sets the mask, returns the old one.
    @discardableResult
    public func setUmask(_ mask: UInt32) -> UInt32 {
        lock.withLock {
            let old = _umask
            _umask = mask & 0o777
            return old
        }
    }

    public var umask: UInt32 { lock.withLock { _umask } }

    private func base(_ at: Location?) -> Location { at ?? cwd }

    // MARK: open

    public func open(_ path: String, flags: OpenFlags, mode: UInt32 = 0o666, at: Location? = nil) throws(Errno) -> OpenFile {
        var symlinkBudget = PathLimits.symlinkMax
        return try open(path, flags: flags, mode: mode, at: at, symlinkBudget: &symlinkBudget)
    }

    private func open(_ path: String, flags: OpenFlags, mode: UInt32, at: Location?,
                      symlinkBudget: inout Int) throws(Errno) -> OpenFile {
        let cred = credentials
        if flags.isTemporaryFile {
            guard flags.canWrite else { throw .invalidArgument }
            let dir = try vfs.resolve(path, from: base(at), followLast: true, credentials: cred)
            guard dir.node.kind == .directory else { throw .notDirectory }
            guard let mem = dir.node as? MemDirectory else {
                return try HostFS.openTemporary(in: dir, flags: flags, mode: mode & ~umask)
            }
            let f = try mem.createUnnamed(mode: mode & ~umask & 0o7777, credentials: cred)
            return OpenFile(location: Location(node: f, path: dir.child("#\(f.inode) (deleted)")),
                            handle: try f.open(flags), flags: flags)
        }
        if flags.contains(.create) && flags.contains(.directory) { throw .invalidArgument }
        if let file = openOnHost(path, flags: flags, at: at, credentials: cred) { return file }
        let (parent, name, trailing) = try vfs.resolveParent(path, from: base(at), credentials: cred)
        // Linux: O_CREAT with a trailing slash is EISDIR before anything is looked up.
        if flags.contains(.create) && trailing { throw .isDirectory }
        var loc = try vfs.lookupChild(parent, name)
        var created = false
        if let existing = loc {
            if flags.contains(.create) && flags.contains(.exclusive) { throw .fileExists }
            if existing.node.kind == .symlink {
                // A trailing slash makes the last component follow, O_NOFOLLOW or not.
                if flags.contains(.noFollow) && !trailing {
                    if !flags.contains(.path) { throw .tooManySymbolicLinkLevels }
                } else {
                    // Open the target from the link's directory: with O_CREAT a dangling
                    // link creates its target, as in Linux.
                    symlinkBudget -= 1
                    if symlinkBudget < 0 { throw .tooManySymbolicLinkLevels }
                    if let magic = existing.node as? MagicLink, let file = magic.openFile() {
                        return try reopen(file, flags: flags)
                    }
                    var target = try existing.node.readLink()
                    if target.isEmpty { throw .noSuchFileOrDirectory }
                    if trailing && !target.hasSuffix("/") { target += "/" }
                    return try open(target, flags: flags, mode: mode, at: parent, symlinkBudget: &symlinkBudget)
                }
            } else if trailing && existing.node.kind != .directory {
                throw .notDirectory
            }
        } else {
            guard flags.contains(.create) else { throw .noSuchFileOrDirectory }
            if trailing { throw .isDirectory }
            try requireAccess([.write, .execute], parent)
            let node = try parent.node.create(name, kind: .regular, mode: mode & ~umask & 0o7777, credentials: cred)
            loc = Location(node: node, path: parent.child(name))
            created = true
            FileSystemEvents.post(node, in: parent.node, name: name, FileEvent.create)
        }
        let target = loc!
        let kind = target.node.kind
        if flags.contains(.directory) && kind != .directory { throw .notDirectory }
        if flags.contains(.path) {
            return OpenFile(location: target, handle: PathHandle(), flags: flags)
        }
        if kind == .directory && (flags.canWrite || flags.contains(.create) || flags.contains(.truncate)) { throw .isDirectory }
        if !created {
            var want: Credentials.Access = []
            if flags.canRead { want.insert(.read) }
            if flags.canWrite || flags.contains(.truncate) { want.insert(.write) }
            try requireAccess(want, target)
        }
        let handle = try target.node.open(flags)
        if flags.contains(.truncate) && kind == .regular && !created {
            try handle.truncate(to: 0)
            FileSystemEvents.post(target, FileEvent.modify)
        }
        return OpenFile(location: target, handle: handle, flags: flags)
    }

    /// The open of an existing host file or directory by root, when its path is one walk
    /// inside a HostFS (`VFS.hostTarget`) with no symlink: a statx and an openat2 on the
    /// host instead of a statx per component, then an openat (nginx opens the file it
    /// serves on every request). Anything else, or any failure, returns nil and takes the
    /// component-by-component way, which decides the outcome and its errno: the same
    /// checks (root needs no search or access permission here) and the same result.
    private func openOnHost(_ path: String, flags: OpenFlags, at: Location?, credentials: Credentials) -> OpenFile? {
        guard credentials.uid == 0, flags.isDisjoint(with: [.create, .truncate, .path]) else { return nil }
        guard let target = vfs.hostTarget(path, from: base(at)),
              let opened = target.fs.openWithoutWalk(target.hostPath, HostFS.passedFlags(flags) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY)
        else { return nil }
        let fs = target.fs
        let handle: any FileHandle = opened.kind == .directory ? HostDirectoryHandle(fs: fs, fd: opened.fd) : HostFileHandle(fs: fs, fd: opened.fd)
        return OpenFile(location: Location(node: HostNode(fs: fs, path: target.hostPath, kind: opened.kind), path: target.vfsPath),
                        handle: handle, flags: flags)
    }

    /// Opening /proc/self/fd/N (and /dev/stdin, /dev/fd/N through it): Linux opens the
    /// object the descriptor refers to again, with `flags`: the same pipe; a new open
    /// file description of the same file, even unlinked; ENXIO for a socket or an
    /// anonymous inode (eventfd, epoll), whose nodes cannot be opened.
    public func reopen(_ file: OpenFile, flags: OpenFlags) throws(Errno) -> OpenFile {
        let target = file.location
        let kind = target.node.kind
        if flags.contains(.directory) && kind != .directory { throw .notDirectory }
        if flags.contains(.path) { return OpenFile(location: target, handle: PathHandle(), flags: flags) }
        if kind == .directory && (flags.canWrite || flags.contains(.create) || flags.contains(.truncate)) { throw .isDirectory }
        var want: Credentials.Access = []
        if flags.canRead { want.insert(.read) }
        if flags.canWrite || flags.contains(.truncate) { want.insert(.write) }
        try requireAccess(want, target)
        let handle: any FileHandle
        if let again = try file.handle.reopen(flags) { handle = again } else { handle = try target.node.open(flags) }
        if flags.contains(.truncate) && kind == .regular {
            try handle.truncate(to: 0)
            FileSystemEvents.post(target, FileEvent.modify)
        }
        return OpenFile(location: target, handle: handle, flags: flags)
    }

    // MARK: attributes

    /// stat/lstat/fstatat.
    public func status(_ path: String, at: Location? = nil, followSymlinks: Bool = true) throws(Errno) -> FileStatus {
        try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials).node.status()
    }

    public func resolve(_ path: String, at: Location? = nil, followSymlinks: Bool = true) throws(Errno) -> Location {
        try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
    }

    /// access/faccessat: `mode` is F_OK (0) or R_OK|W_OK|X_OK bits.
    public func access(_ path: String, mode: UInt32, at: Location? = nil, followSymlinks: Bool = true) throws(Errno) {
        guard mode & ~7 == 0 else { throw .invalidArgument }
        let loc = try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
        if mode == 0 { return }
        try requireAccess(Credentials.Access(rawValue: mode), loc)
    }

    public func changeMode(_ path: String, mode: UInt32, at: Location? = nil, followSymlinks: Bool = true) throws(Errno) {
        let loc = try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
        try requireOwner(loc)
        try loc.node.setMode(mode)
        FileSystemEvents.post(loc, FileEvent.attrib)
    }

    public func changeOwner(_ path: String, uid: UInt32?, gid: UInt32?, at: Location? = nil, followSymlinks: Bool = true) throws(Errno) {
        let loc = try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
        guard credentials.uid == 0 else { throw .notPermitted }
        try loc.node.setOwner(uid: uid, gid: gid)
        FileSystemEvents.post(loc, FileEvent.attrib)
    }

    public func setTimes(_ path: String, access: Timespec?, modification: Timespec?, at: Location? = nil,
                         followSymlinks: Bool = true) throws(Errno) {
        let loc = try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
        try loc.node.setTimes(access: access ?? .now, modification: modification ?? .now)
    }

    /// utimensat(2): nil leaves a time as it is (UTIME_OMIT); the caller passes `.now`
    /// for UTIME_NOW. Setting explicit times needs ownership; "now" needs write access.
    public func updateTimes(_ path: String, access: Timespec?, modification: Timespec?, explicit: Bool,
                            at: Location? = nil, followSymlinks: Bool = true) throws(Errno) {
        let loc = try vfs.resolve(path, from: base(at), followLast: followSymlinks, credentials: credentials)
        try updateTimes(loc, access: access, modification: modification, explicit: explicit)
    }

    public func updateTimes(_ loc: Location, access: Timespec?, modification: Timespec?, explicit: Bool) throws(Errno) {
        if explicit { try requireOwner(loc) } else if credentials.uid != 0, try loc.node.status().uid != credentials.uid {
            try requireAccess(.write, loc)
        }
        try loc.node.setTimes(access: access, modification: modification)
        FileSystemEvents.post(loc, FileEvent.attrib)
    }

    /// fchmod(2) and fchown(2) on an open file's node.
    public func changeMode(_ loc: Location, mode: UInt32) throws(Errno) {
        try requireOwner(loc)
        try loc.node.setMode(mode)
        FileSystemEvents.post(loc, FileEvent.attrib)
    }

    public func changeOwner(_ loc: Location, uid: UInt32?, gid: UInt32?) throws(Errno) {
        guard credentials.uid == 0 else { throw .notPermitted }
        try loc.node.setOwner(uid: uid, gid: gid)
        FileSystemEvents.post(loc, FileEvent.attrib)
    }

    /// truncate(2).
    public func truncate(_ path: String, to length: Int64, at: Location? = nil) throws(Errno) {
        guard length >= 0 else { throw .invalidArgument }
        let loc = try vfs.resolve(path, from: base(at), followLast: true, credentials: credentials)
        if loc.node.kind == .directory { throw .isDirectory }
        guard loc.node.kind == .regular else { throw .invalidArgument }
        try requireAccess(.write, loc)
        try loc.node.truncate(to: length)
        FileSystemEvents.post(loc, FileEvent.modify)
    }

    public func readLink(_ path: String, at: Location? = nil) throws(Errno) -> String {
        let loc = try vfs.resolve(path, from: base(at), followLast: false, credentials: credentials)
        guard loc.node.kind == .symlink else { throw .invalidArgument }
        return try loc.node.readLink()
    }

    // MARK: namespace

    public func makeDirectory(_ path: String, mode: UInt32 = 0o777, at: Location? = nil) throws(Errno) {
        let (parent, name, _) = try vfs.resolveParent(path, from: base(at), credentials: credentials)
        if name == "." || name == ".." { throw .fileExists }
        if try vfs.lookupChild(parent, name) != nil { throw .fileExists }
        try requireAccess([.write, .execute], parent)
        try parent.node.makeDirectory(name, mode: mode & ~umask & 0o7777, credentials: credentials)
        FileSystemEvents.post(nil, in: parent.node, name: name, FileEvent.create | FileEvent.isDirectory)
    }

    /// mknod for FIFOs and regular files, and the names AF_UNIX sockets bind (.socket).
    /// Returns the new node.
    @discardableResult
    public func makeNode(_ path: String, kind: NodeKind, mode: UInt32, at: Location? = nil) throws(Errno) -> any Node {
        guard kind == .fifo || kind == .regular || kind == .socket else { throw .notPermitted }
        let (parent, name, trailing) = try vfs.resolveParent(path, from: base(at), credentials: credentials)
        if name == "." || name == ".." { throw .fileExists }
        if try vfs.lookupChild(parent, name) != nil { throw .fileExists }
        if trailing { throw .noSuchFileOrDirectory }
        try requireAccess([.write, .execute], parent)
        let node = try parent.node.create(name, kind: kind, mode: mode & ~umask & 0o7777, credentials: credentials)
        FileSystemEvents.post(node, in: parent.node, name: name, FileEvent.create)
        return node
    }

    public func makeSymlink(_ target: String, at path: String, relativeTo: Location? = nil) throws(Errno) {
        guard !target.isEmpty else { throw .noSuchFileOrDirectory }
        if target.utf8.count >= PathLimits.pathMax { throw .fileNameTooLong }
        let (parent, name, trailing) = try vfs.resolveParent(path, from: base(relativeTo), credentials: credentials)
        if name == "." || name == ".." { throw .fileExists }
        if try vfs.lookupChild(parent, name) != nil { throw .fileExists }
        if trailing { throw .noSuchFileOrDirectory }
        try requireAccess([.write, .execute], parent)
        try parent.node.makeSymlink(name, target: target, credentials: credentials)
        FileSystemEvents.post(nil, in: parent.node, name: name, FileEvent.create)
    }

    /// link/linkat.
    public func link(_ existing: String, to newPath: String, existingAt: Location? = nil, newAt: Location? = nil,
                     followSymlinks: Bool = false) throws(Errno) {
        // Linux's order: the old path, then the new name, then EXDEV, then EPERM.
        let source = try vfs.resolve(existing, from: base(existingAt), followLast: followSymlinks, credentials: credentials)
        let (parent, name, trailing) = try vfs.resolveParent(newPath, from: base(newAt), credentials: credentials)
        if name == "." || name == ".." { throw .fileExists }
        if try vfs.lookupChild(parent, name) != nil { throw .fileExists }
        if trailing { throw .noSuchFileOrDirectory }
        guard source.node.fileSystem === parent.node.fileSystem else { throw .improperLink }
        if source.node.kind == .directory { throw .notPermitted }
        try requireAccess([.write, .execute], parent)
        try parent.node.link(name, to: source.node)
        FileSystemEvents.post(source.node, in: nil, name: nil, FileEvent.attrib)
        FileSystemEvents.post(nil, in: parent.node, name: name, FileEvent.create)
    }

    public func unlink(_ path: String, at: Location? = nil) throws(Errno) {
        let (parent, name, trailing) = try vfs.resolveParent(path, from: base(at), credentials: credentials)
        if name == "." || name == ".." { throw .isDirectory }
        guard let existing = try vfs.lookupChild(parent, name) else { throw .noSuchFileOrDirectory }
        if existing.node.kind == .directory { throw .isDirectory }
        if trailing { throw .notDirectory }
        try requireAccess([.write, .execute], parent)
        try requireStickyPermission(parent, existing)
        try parent.node.unlink(name)
        if FileSystemEvents.active {
            // Linux's order: the link count (IN_ATTRIB), the inode, then the name (IN_DELETE).
            let gone = ((try? existing.node.status().linkCount) ?? 0) == 0
            FileSystemEvents.post(existing.node, in: nil, name: nil, FileEvent.attrib)
            if gone { FileSystemEvents.post(existing.node, in: nil, name: nil, FileEvent.deleteSelf) }
            FileSystemEvents.post(nil, in: parent.node, name: name, FileEvent.delete)
        }
    }

    public func removeDirectory(_ path: String, at: Location? = nil) throws(Errno) {
        let (parent, name, _) = try vfs.resolveParent(path, from: base(at), credentials: credentials)
        if name == "." { throw .invalidArgument }
        if name == ".." { throw .directoryNotEmpty }
        guard let existing = try vfs.lookupChild(parent, name) else { throw .noSuchFileOrDirectory }
        guard existing.node.kind == .directory else { throw .notDirectory }
        if vfs.isMountPoint(existing.path) { throw .resourceBusy }
        try requireAccess([.write, .execute], parent)
        try requireStickyPermission(parent, existing)
        try parent.node.removeDirectory(name)
        FileSystemEvents.post(existing.node, in: nil, name: nil, FileEvent.deleteSelf)
        FileSystemEvents.post(nil, in: parent.node, name: name, FileEvent.delete | FileEvent.isDirectory)
    }

    /// rename/renameat (no flags).
    public func rename(_ oldPath: String, to newPath: String, oldAt: Location? = nil, newAt: Location? = nil) throws(Errno) {
        let (oldParent, oldName, oldTrailing) = try vfs.resolveParent(oldPath, from: base(oldAt), credentials: credentials)
        let (newParent, newName, newTrailing) = try vfs.resolveParent(newPath, from: base(newAt), credentials: credentials)
        if oldName == "." || oldName == ".." || newName == "." || newName == ".." { throw .resourceBusy }
        guard let source = try vfs.lookupChild(oldParent, oldName) else { throw .noSuchFileOrDirectory }
        if (oldTrailing || newTrailing) && source.node.kind != .directory { throw .notDirectory }
        if vfs.isMountPoint(source.path) { throw .resourceBusy }
        guard oldParent.node.fileSystem === newParent.node.fileSystem else { throw .improperLink }
        if let target = try vfs.lookupChild(newParent, newName) {
            if vfs.isMountPoint(target.path) { throw .resourceBusy }
            if target.node !== source.node {
                try requireStickyPermission(newParent, target)
            }
        }
        try requireAccess([.write, .execute], oldParent)
        try requireAccess([.write, .execute], newParent)
        try requireStickyPermission(oldParent, source)
        try oldParent.node.rename(oldName, to: newParent.node, as: newName)
        if FileSystemEvents.active {
            let cookie = FileSystemEvents.nextCookie()
            let dir = source.node.kind == .directory ? FileEvent.isDirectory : 0
            FileSystemEvents.post(nil, in: oldParent.node, name: oldName, FileEvent.movedFrom | dir, cookie: cookie)
            FileSystemEvents.post(nil, in: newParent.node, name: newName, FileEvent.movedTo | dir, cookie: cookie)
            FileSystemEvents.post(source.node, in: nil, name: nil, FileEvent.moveSelf)
        }
    }

    // MARK: cwd

    public func changeDirectory(_ path: String) throws(Errno) {
        let loc = try vfs.resolve(path, from: cwd, followLast: true, credentials: credentials)
        try changeDirectory(to: loc)
    }

    /// fchdir(2).
    public func changeDirectory(to loc: Location) throws(Errno) {
        guard loc.node.kind == .directory else { throw .notDirectory }
        try requireAccess(.execute, loc)
        lock.withLock { _cwd = loc }
    }

    /// getcwd(2): the canonical path the cwd was reached by.
    public var currentDirectoryPath: String { cwd.path }

    // MARK: permission helpers

    private func requireAccess(_ want: Credentials.Access, _ loc: Location) throws(Errno) {
        if want.isEmpty { return }
        if credentials.uid == 0 && !want.contains(.execute) { return }
        guard credentials.allows(want, try loc.node.status()) else { throw .permissionDenied }
    }

    private func requireOwner(_ loc: Location) throws(Errno) {
        if credentials.uid == 0 { return }
        guard try loc.node.status().uid == credentials.uid else { throw .notPermitted }
    }

    /// In a sticky directory only the owner of an entry or of the directory may remove it.
    private func requireStickyPermission(_ dir: Location, _ entry: Location) throws(Errno) {
        if credentials.uid == 0 { return }
        let d = try dir.node.status()
        guard d.mode & 0o1000 != 0 else { return }
        let e = try entry.node.status()
        if e.uid != credentials.uid && d.uid != credentials.uid { throw .notPermitted }
    }
}
