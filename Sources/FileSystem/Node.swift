// Node.swift: what every file system provides: nodes (inodes) with directory, symlink
// and attribute operations, and handles for the data of an open node. Defaults answer
// with the errno Linux gives when a node kind lacks an operation.
import SystemPackage
import UThreads

/// A mounted file system.
public protocol FileSystemInstance: AnyObject, Sendable {
    /// The root directory.
    var root: any Node { get }
    /// st_dev of its nodes.
    var deviceID: UInt64 { get }
    /// A short name for /proc/self/mounts (tmpfs, hostfs, devtmpfs...).
    var typeName: String { get }
}

/// An inode. Directory operations take a single path component (no slashes).
public protocol Node: AnyObject, Sendable {
    var fileSystem: any FileSystemInstance { get }
    /// The node's kind, known without a status call (path walks test it per component).
    var kind: NodeKind { get }
    func status() throws(Errno) -> FileStatus

    // Directories.
    func lookup(_ name: String) throws(Errno) -> any Node
    /// Creates a regular file (O_CREAT, or mknod of a FIFO) and returns it.
    func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node
    func makeDirectory(_ name: String, mode: UInt32, credentials: Credentials) throws(Errno)
    func makeSymlink(_ name: String, target: String, credentials: Credentials) throws(Errno)
    func link(_ name: String, to node: any Node) throws(Errno)
    func unlink(_ name: String) throws(Errno)
    func removeDirectory(_ name: String) throws(Errno)
    /// Moves `name` here to `newName` in `directory` (same file system), replacing what
    /// is there by Linux's rules.
    func rename(_ name: String, to directory: any Node, as newName: String) throws(Errno)
    /// Entries after `cookie` (0: from the start, including "." and ".."), in a stable
    /// order; `body` returns false to stop.
    func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno)

    // Symlinks.
    func readLink() throws(Errno) -> String

    // Attributes.
    func setMode(_ mode: UInt32) throws(Errno)
    func setOwner(uid: UInt32?, gid: UInt32?) throws(Errno)
    func setTimes(access: Timespec?, modification: Timespec?) throws(Errno)
    func truncate(to size: Int64) throws(Errno)

    /// Opens the node's data. `flags` have been checked by the VFS (access mode, kind).
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle
}

extension Node {
    public func lookup(_ name: String) throws(Errno) -> any Node { throw .notDirectory }
    public func create(_ name: String, kind: NodeKind, mode: UInt32, credentials: Credentials) throws(Errno) -> any Node { throw .notDirectory }
    public func makeDirectory(_ name: String, mode: UInt32, credentials: Credentials) throws(Errno) { throw .notDirectory }
    public func makeSymlink(_ name: String, target: String, credentials: Credentials) throws(Errno) { throw .notDirectory }
    public func link(_ name: String, to node: any Node) throws(Errno) { throw .notDirectory }
    public func unlink(_ name: String) throws(Errno) { throw .notDirectory }
    public func removeDirectory(_ name: String) throws(Errno) { throw .notDirectory }
    public func rename(_ name: String, to directory: any Node, as newName: String) throws(Errno) { throw .notDirectory }
    public func readDirectory(after cookie: Int64, _ body: (DirectoryEntry) -> Bool) throws(Errno) { throw .notDirectory }
    public func readLink() throws(Errno) -> String { throw .invalidArgument }
    public func setMode(_ mode: UInt32) throws(Errno) { throw .notPermitted }
    public func setOwner(uid: UInt32?, gid: UInt32?) throws(Errno) { throw .notPermitted }
    public func setTimes(access: Timespec?, modification: Timespec?) throws(Errno) { throw .notPermitted }
    public func truncate(to size: Int64) throws(Errno) { throw .invalidArgument }
}

/// The data side of an open node: positional reads and writes. Stream-like handles
/// (pipes, devices) ignore the offset.
public protocol FileHandle: AnyObject, Sendable {
    /// Whether offsets mean anything (lseek works).
    var isSeekable: Bool { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int
    /// The current size (for SEEK_END and O_APPEND).
    func size() throws(Errno) -> Int64
    func sync() throws(Errno)
    func truncate(to size: Int64) throws(Errno)
    /// Called when the last file description referring to it closes.
    func close()
    /// What the handle is ready for now.
    var readiness: Readiness { get }
    /// Calls `observer` whenever readiness may have changed; returns a token for
    /// `removeReadinessObserver`. Always-ready handles never call it.
    func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int
    func removeReadinessObserver(_ token: Int)
    /// Whether the observers hear of every change that can make the handle ready (not
    /// only some): epoll then looks at the handle only after an observer fired, instead of
    /// on every wait. False unless a handle promises it.
    var reportsEveryReadinessChange: Bool { get }
    /// The host descriptor behind this handle, when there is one (HostFS files, std
    /// streams): what mmap of the file and fstat of a stream use.
    var hostDescriptor: Int32? { get }
    /// The handle keeps the file offset itself (a host descriptor shared with processes
    /// outside the instance, e.g. a redirected standard stream): reads and writes at
    /// offset -1 use and move it, and `seek` moves it.
    var keepsOffset: Bool { get }
    /// lseek(2) on a handle that keeps its own offset.
    func seek(_ offset: Int64, whence: Int32) throws(Errno) -> Int64
    /// Opening /proc/self/fd/N of a description with this handle: a new handle on the
    /// same object with `flags` (the same pipe, a new host description of the same
    /// file). nil: the node behind the description is opened again instead.
    func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)?
}

extension FileHandle {
    public var isSeekable: Bool { true }
    public func sync() throws(Errno) {}
    public func truncate(to size: Int64) throws(Errno) { throw .invalidArgument }
    public func close() {}
    public var readiness: Readiness { [.readable, .writable] }
    public func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int { 0 }
    public func removeReadinessObserver(_ token: Int) {}
    public var reportsEveryReadinessChange: Bool { false }
    public var hostDescriptor: Int32? { nil }
    public var keepsOffset: Bool { false }
    public func seek(_ offset: Int64, whence: Int32) throws(Errno) -> Int64 { throw .illegalSeek }
    public func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? { nil }
}

/// Readiness observers for handles whose readiness changes (pipes, devices).
public final class ReadinessObservers: @unchecked Sendable {
    private let lock = SpinLock()
    /// In the order they were added. An array, not a dictionary: `notify` takes it by
    /// reference (no copy, no allocation) and calls the observers outside the lock.
    private var observers: [(token: Int, observer: @Sendable (Readiness) -> Void)] = []
    private var next = 1

    public init() {}

    public func add(_ o: @escaping @Sendable (Readiness) -> Void) -> Int {
        lock.withLock {
            let t = next
            next += 1
            observers.append((t, o))
            return t
        }
    }

    public func remove(_ token: Int) {
        lock.withLock {
            if let k = observers.firstIndex(where: { $0.token == token }) { observers.remove(at: k) }
        }
    }

    /// Calls every observer (outside the lock).
    public func notify(_ r: Readiness) {
        let all = lock.withLock { observers }
        for o in all { o.observer(r) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
