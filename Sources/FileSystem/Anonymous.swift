// Anonymous.swift: files without a path — what pipe(2), socketpair(2), eventfd(2) and
// epoll_create(2) return: a node for fstat (a FIFO, a socket, or an anonymous inode as
// Linux's pipefs, sockfs and anon_inodefs give), and the eventfd counter. (Socket pairs
// are AF_UNIX sockets: SyscallEmu's UnixSocketProvider.)
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// The file system anonymous nodes belong to (st_dev of pipes, sockets, eventfds).
public final class AnonymousFileSystem: FileSystemInstance, @unchecked Sendable {
    public static let shared = AnonymousFileSystem()
    public let deviceID: UInt64 = 0x0e  // Linux's pipefs/sockfs/anon_inodefs are 0:N too
    public let typeName = "anon"
    private let nextInode = Atomic<UInt64>(1)
    public var root: any Node { AnonymousNode(kind: .directory, mode: 0o700) }

    func inodeNumber() -> UInt64 { nextInode.add(1, ordering: .relaxed).newValue }
}

/// A node without a name. `kind` nil is an anonymous inode (st_mode has no type bits).
public final class AnonymousNode: Node, @unchecked Sendable {
    public let kind: NodeKind
    private let modeBits: UInt32
    private let inode: UInt64
    private let created = Timespec.now
    private let uid = UInt32(getuid()), gid = UInt32(getgid())

    /// - Parameters:
    ///   - kind: .fifo for pipes, .socket for sockets; anything else with `typeless`.
    ///   - mode: permission bits (without `typeless`).
    ///   - typeless: an anonymous inode (eventfd, epoll): mode 0600 without S_IFMT bits.
    public init(kind: NodeKind, mode: UInt32, typeless: Bool = false) {
        self.kind = kind
        modeBits = (typeless ? 0 : kind.modeBits) | mode
        inode = AnonymousFileSystem.shared.inodeNumber()
    }

    public static func pipe() -> AnonymousNode { AnonymousNode(kind: .fifo, mode: 0o600) }
    public static func socket() -> AnonymousNode { AnonymousNode(kind: .socket, mode: 0o777) }
    public static func anonymousInode() -> AnonymousNode { AnonymousNode(kind: .regular, mode: 0o600, typeless: true) }

    public var fileSystem: any FileSystemInstance { AnonymousFileSystem.shared }

    public func status() throws(Errno) -> FileStatus {
        var s = FileStatus()
        s.device = AnonymousFileSystem.shared.deviceID
        s.inode = inode
        s.mode = modeBits
        s.uid = uid
        s.gid = gid
        s.accessTime = created
        s.modificationTime = created
        s.changeTime = created
        return s
    }

    public func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { throw .noSuchAddressOrDevice }
}

/// eventfd(2): a 64-bit counter. A read returns it and resets it (or, as a semaphore,
/// returns 1 and decrements it) and waits while it is zero; a write adds and waits
/// while the sum would pass 0xffff_ffff_ffff_fffe.
public final class EventCounter: FileHandle, @unchecked Sendable {
    public static let maximum: UInt64 = 0xffff_ffff_ffff_fffe
    private let lock = SpinLock()
    private var value: UInt64
    private let semaphore: Bool
    private let readWaiters = WaitList()
    private let writeWaiters = WaitList()
    private let observers = ReadinessObservers()

    public init(initial: UInt32, semaphore: Bool) {
        value = UInt64(initial)
        self.semaphore = semaphore
    }

    public var isSeekable: Bool { false }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        guard buffer.count >= 8 else { throw .invalidArgument }
        while true {
            let (got, waiter, wake) = lock.withLock { () -> (UInt64?, Waiter?, [Waiter]) in
                if value == 0 { return (nil, nonBlocking ? nil : readWaiters.enroll(), []) }
                let v = semaphore ? 1 : value
                value -= v
                return (v, nil, writeWaiters.takeAll())
            }
            if let got {
                buffer.storeBytes(of: got, as: UInt64.self)
                wake.wakeAll()
                observers.notify(readiness)
                return 8
            }
            guard let waiter else { throw .wouldBlock }
            WaitList.block(waiter)
            if WaitList.interrupted() {
                lock.withLock { readWaiters.withdraw(waiter) }
                throw .interrupted
            }
        }
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        guard buffer.count == 8 else { throw .invalidArgument }  // exactly one counter, as Linux
        let add = buffer.loadUnaligned(as: UInt64.self)
        guard add != UInt64.max else { throw .invalidArgument }
        while true {
            let (done, waiter, wake) = lock.withLock { () -> (Bool, Waiter?, [Waiter]) in
                if Self.maximum - value < add { return (false, nonBlocking ? nil : writeWaiters.enroll(), []) }
                value += add
                return (true, nil, readWaiters.takeAll())
            }
            if done {
                wake.wakeAll()
                observers.notify(readiness)
                return 8
            }
            guard let waiter else { throw .wouldBlock }
            WaitList.block(waiter)
            if WaitList.interrupted() {
                lock.withLock { writeWaiters.withdraw(waiter) }
                throw .interrupted
            }
        }
    }

    public func size() throws(Errno) -> Int64 { 0 }

    public var readiness: Readiness {
        lock.withLock { () -> Readiness in
            var r: Readiness = []
            if value > 0 { r.insert(.readable) }
            if value < Self.maximum { r.insert(.writable) }
            return r
        }
    }

    public func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    public func removeReadinessObserver(_ t: Int) { observers.remove(t) }
}
