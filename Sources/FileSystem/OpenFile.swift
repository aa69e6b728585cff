// OpenFile.swift: an open file description: the node, its handle, status flags and the
// shared offset (shared by every descriptor dup'ed from it), lseek and getdents64.
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// An open file description. Descriptors that share it (dup, fork) share its offset
/// and status flags; the handle closes when the last reference goes.
public final class OpenFile: @unchecked Sendable {
    public let location: Location
    public let handle: any FileHandle
    private let lock = SpinLock()
    private var _flags: OpenFlags
    private var _offset: Int64 = 0
    private var directoryCookie: Int64 = 0
    /// A directory entry that did not fit in the caller's last getdents buffer.
    private var pendingEntry: DirectoryEntry?

    public init(location: Location, handle: any FileHandle, flags: OpenFlags) {
        self.location = location
        self.handle = handle
        _flags = flags
    }

    deinit {
        handle.close()
        if FileSystemEvents.active && !_flags.contains(.path) {
            FileSystemEvents.post(location, _flags.canWrite ? FileEvent.closeWrite : FileEvent.closeNoWrite)
        }
    }

    /// IN_MODIFY after a write that wrote something.
    @inline(__always)
    private func modified(_ n: Int) -> Int {
        if n > 0 && FileSystemEvents.active { FileSystemEvents.post(location, FileEvent.modify) }
        return n
    }

    /// Status flags (O_APPEND and O_NONBLOCK change with fcntl F_SETFL).
    public var flags: OpenFlags {
        get { lock.withLock { _flags } }
        set { lock.withLock { _flags = newValue } }
    }

    public var offset: Int64 { lock.withLock { position } }

    /// After a fork, the host fd's own offset is the one the processes share (its open
    /// file description is the kernel's, inherited by the child); -1 before.
    private var hostOffsetFD: Int32 = -1

    /// The offset (lock held): the kernel's once shared.
    private var position: Int64 {
        get { hostOffsetFD >= 0 ? Int64(lseek(hostOffsetFD, 0, SEEK_CUR)) : _offset }
        set {
            _offset = newValue
            if hostOffsetFD >= 0 { _ = lseek(hostOffsetFD, off_t(newValue), SEEK_SET) }
        }
    }

    /// Before a fork: a regular host file's offset moves into its host fd, so parent and
    /// child share it as Linux processes share an open file description.
    public func shareOffsetThroughHost() {
        guard handle.isSeekable, location.node.kind == .regular, let fd = handle.hostDescriptor else { return }
        lock.withLock {
            guard hostOffsetFD < 0 else { return }
            _ = lseek(fd, off_t(_offset), SEEK_SET)
            hostOffsetFD = fd
        }
    }

    private var isPath: Bool { _flags.contains(.path) }

    /// Whether this is an open directory. An O_TMPFILE on HostFS is located at its
    /// directory but is a host regular file (it has a host descriptor; a HostFS
    /// directory's handle has none).
    public var isDirectory: Bool { location.node.kind == .directory && handle.hostDescriptor == nil }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let f = flags
        guard f.canRead, !f.contains(.path) else { throw .badFileDescriptor }
        if !handle.isSeekable { return try handle.read(into: buffer, at: 0, nonBlocking: f.contains(.nonBlocking)) }
        if handle.keepsOffset { return try handle.read(into: buffer, at: -1, nonBlocking: f.contains(.nonBlocking)) }
        // The offset is claimed under the lock only to read it; concurrent readers of one
        // description race as they do on Linux.
        let at = offset
        let n = try handle.read(into: buffer, at: at, nonBlocking: f.contains(.nonBlocking))
        lock.withLock { position = at + Int64(n) }
        return n
    }

    public func write(from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        let f = flags
        guard f.canWrite, !f.contains(.path) else { throw .badFileDescriptor }
        if !handle.isSeekable { return try handle.write(from: buffer, at: 0, nonBlocking: f.contains(.nonBlocking)) }
        if handle.keepsOffset { return try handle.write(from: buffer, at: -1, nonBlocking: f.contains(.nonBlocking)) }
        if f.contains(.append) {
            let n = try handle.write(from: buffer, at: -1, nonBlocking: false)
            let end = try handle.size()
            lock.withLock { position = end }
            return modified(n)
        }
        let at = offset
        let n = try handle.write(from: buffer, at: at, nonBlocking: f.contains(.nonBlocking))
        lock.withLock { position = at + Int64(n) }
        return modified(n)
    }

    /// pread(2): no offset change; ESPIPE on pipes.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        let f = flags
        guard f.canRead, !f.contains(.path) else { throw .badFileDescriptor }
        guard handle.isSeekable else { throw .illegalSeek }
        // rw_verify_area: a negative offset, or one whose end overflows, is EINVAL.
        guard offset >= 0, !offset.addingReportingOverflow(Int64(buffer.count)).overflow else { throw .invalidArgument }
        return try handle.read(into: buffer, at: offset, nonBlocking: f.contains(.nonBlocking))
    }

    /// pwrite(2).
    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        let f = flags
        guard f.canWrite, !f.contains(.path) else { throw .badFileDescriptor }
        guard handle.isSeekable else { throw .illegalSeek }
        guard offset >= 0, !offset.addingReportingOverflow(Int64(buffer.count)).overflow else { throw .invalidArgument }
        // Linux appends even with pwrite when O_APPEND is set.
        return modified(try handle.write(from: buffer, at: f.contains(.append) ? -1 : offset, nonBlocking: false))
    }

    public enum Whence: Int32 { case set = 0, current = 1, end = 2, data = 3, hole = 4 }

    /// lseek(2).
    public func seek(_ offset: Int64, whence: Whence) throws(Errno) -> Int64 {
        guard !isPath else { throw .badFileDescriptor }
        guard handle.isSeekable else { throw .illegalSeek }
        if handle.keepsOffset { return try handle.seek(offset, whence: whence.rawValue) }
        let isDirectory = self.isDirectory
        // A directory moves as tmpfs's does (dcache_dir_lseek): SEEK_SET and SEEK_CUR only.
        if isDirectory && whence != .set && whence != .current { throw .invalidArgument }
        let size = isDirectory ? 0 : try handle.size()
        return try lock.withLock { () throws(Errno) -> Int64 in
            let base: Int64
            switch whence {
            case .set: base = 0
            case .current: base = position
            case .end: base = size
            case .data, .hole:
                guard offset >= 0, offset < size else { throw .noSuchAddressOrDevice }
                let r = whence == .data ? offset : size
                position = r
                return r
            }
            // Linux adds in a wrapping loff_t and refuses the negative sum in vfs_setpos
            // (or dcache_dir_lseek): an overflow is EINVAL for every file kind, never
            // EOVERFLOW (that is the 32-bit off_t of llseek).
            let (new, overflow) = base.addingReportingOverflow(offset)
            guard !overflow, new >= 0 else { throw .invalidArgument }
            position = new
            if isDirectory {
                directoryCookie = new
                pendingEntry = nil
            }
            return new
        }
    }

    /// getdents64(2): fills `buffer` with struct linux_dirent64 records; 0 at the end.
    public func readDirectoryEntries(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard !isPath else { throw .badFileDescriptor }
        guard location.node.kind == .directory else { throw .notDirectory }
        return try lock.withLock { () throws(Errno) -> Int in
            var used = 0
            var tooSmall = false
            func put(_ e: DirectoryEntry) -> Bool {
                let name = e.name.pathBytes
                let reclen = (19 + name.count + 1 + 7) & ~7
                if used + reclen > buffer.count {
                    tooSmall = used == 0
                    pendingEntry = e
                    return false
                }
                let p = buffer.baseAddress! + used
                p.storeBytes(of: e.inode, as: UInt64.self)
                (p + 8).storeBytes(of: e.nextCookie, as: Int64.self)
                (p + 16).storeBytes(of: UInt16(reclen), as: UInt16.self)
                (p + 18).storeBytes(of: e.kind.directoryEntryType, as: UInt8.self)
                name.withUnsafeBytes { (p + 19).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
                (p + 19 + name.count).initializeMemory(as: UInt8.self, repeating: 0, count: reclen - 19 - name.count)
                used += reclen
                directoryCookie = e.nextCookie
                _offset = e.nextCookie
                return true
            }
            if let pending = pendingEntry {
                pendingEntry = nil
                if !put(pending) { return tooSmall ? -1 : 0 }
            }
            try location.node.readDirectory(after: directoryCookie) { put($0) }
            if tooSmall { return -1 }
            return used
        }.checkedDirectoryCount()
    }
}

private extension Int {
    func checkedDirectoryCount() throws(Errno) -> Int {
        if self < 0 { throw .invalidArgument }  // the buffer cannot hold one entry
        return self
    }
}

/// The handle of an O_PATH descriptor: no data access.
final class PathHandle: FileHandle, @unchecked Sendable {
    var isSeekable: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .badFileDescriptor }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .badFileDescriptor }
    func size() throws(Errno) -> Int64 { 0 }
}
