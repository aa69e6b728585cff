// Anonymous.swift: files without a path — what pipe(2), socketpair(2), eventfd(2) and
// epoll_create(2) return: a node for fstat (a FIFO, a socket, or an anonymous inode as
// Linux's pipefs, sockfs and anon_inodefs give), stream socket pairs over two pipes,
// and the eventfd counter.
import Synchronization
import SystemPackage

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

/// One end of a connected stream socket pair (socketpair(AF_UNIX, SOCK_STREAM)): it
/// reads from one pipe and writes into the other, with shutdown in each direction.
public final class SocketPairEnd: FileHandle, @unchecked Sendable {
    private let incoming: Pipe
    private let outgoing: Pipe
    private let lock = FSLock()
    private var readOpen = true
    private var writeOpen = true
    private var tokens: [Int: (Int, Int)] = [:]
    private var nextToken = 1

    init(incoming: Pipe, outgoing: Pipe) {
        self.incoming = incoming
        self.outgoing = outgoing
    }

    deinit { close() }

    /// A connected pair.
    public static func makePair() -> (SocketPairEnd, SocketPairEnd) {
        let ab = Pipe(capacity: 212_992), ba = Pipe(capacity: 212_992)  // net.core.wmem_default
        ab.addEnds()
        ba.addEnds()
        ab.anonymous = true
        ba.anonymous = true
        return (SocketPairEnd(incoming: ba, outgoing: ab), SocketPairEnd(incoming: ab, outgoing: ba))
    }

    public var isSeekable: Bool { false }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if !lock.withLock({ readOpen }) { return 0 }  // after SHUT_RD: end of file
        return try incoming.read(into: buffer, nonBlocking: nonBlocking)
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if !lock.withLock({ writeOpen }) { throw .brokenPipe }
        return try outgoing.write(from: buffer, nonBlocking: nonBlocking)
    }

    public func size() throws(Errno) -> Int64 { 0 }

    /// shutdown(2): SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2).
    public func shutdown(_ how: Int32) throws(Errno) {
        guard (0...2).contains(how) else { throw .invalidArgument }
        let (closeRead, closeWrite) = lock.withLock { () -> (Bool, Bool) in
            let r = how != 1 && readOpen, w = how != 0 && writeOpen
            if r { readOpen = false }
            if w { writeOpen = false }
            return (r, w)
        }
        if closeRead { incoming.closeReader() }
        if closeWrite { outgoing.closeWriter() }
    }

    public func close() { try? shutdown(2) }

    /// Bytes waiting to be read (FIONREAD).
    public var available: Int { incoming.available }

    /// Before a fork: both directions move into host pipes (Pipe.promoteToHost).
    public func promoteToHost() {
        incoming.promoteToHost()
        outgoing.promoteToHost()
    }

    public var readiness: Readiness {
        let (r, w) = lock.withLock { (readOpen, writeOpen) }
        var out: Readiness = []
        let inR = incoming.readReadiness
        if !r || inR.contains(.readable) || inR.contains(.hangUp) { out.insert(.readable) }
        if w { out.formUnion(outgoing.writeReadiness.intersection([.writable, .error])) }
        // Both directions gone (the peer closed, or shut down both ways): hang-up.
        if inR.contains(.hangUp) && (!w || outgoing.writeReadiness.contains(.error)) { out.insert(.hangUp) }
        return out
    }

    public func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int {
        let a = incoming.readObservers.add(o), b = outgoing.writeObservers.add(o)
        return lock.withLock {
            let t = nextToken
            nextToken += 1
            tokens[t] = (a, b)
            return t
        }
    }

    public func removeReadinessObserver(_ t: Int) {
        guard let (a, b) = lock.withLock({ tokens.removeValue(forKey: t) }) else { return }
        incoming.readObservers.remove(a)
        outgoing.writeObservers.remove(b)
    }
}

/// eventfd(2): a 64-bit counter. A read returns it and resets it (or, as a semaphore,
/// returns 1 and decrements it) and waits while it is zero; a write adds and waits
/// while the sum would pass 0xffff_ffff_ffff_fffe.
public final class EventCounter: FileHandle, @unchecked Sendable {
    public static let maximum: UInt64 = 0xffff_ffff_ffff_fffe
    private let lock = FSLock()
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
        guard buffer.count >= 8 else { throw .invalidArgument }
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
