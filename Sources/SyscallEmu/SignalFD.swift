// SignalFD.swift: signalfd(2) and signalfd4(2): a descriptor that reads the pending
// signals of its mask (the reading thread's and the process's) as signalfd_siginfo
// records, readable in poll/epoll/select while one is pending.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A signalfd: the mask lives here, the signals in the process's signal state.
final class SignalFD: FileHandle, @unchecked Sendable {
    /// sizeof(struct signalfd_siginfo).
    static let recordSize = 128

    private let signals: ProcessSignals
    private let lock = SpinLock()
    private var _mask: UInt64

    init(signals: ProcessSignals, mask: UInt64) {
        self.signals = signals
        _mask = mask
    }

    var mask: UInt64 {
        get { lock.withLock { _mask } }
        set { lock.withLock { _mask = newValue & ~SignalSet.unblockable } }
    }

    var isSeekable: Bool { false }
    func size() throws(Errno) -> Int64 { 0 }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let room = buffer.count / Self.recordSize
        guard room > 0 else { throw .invalidArgument }
        guard let t = AppThread.current else { throw .wouldBlock }
        while true {
            var n = 0
            while n < room, let (sig, si) = signals.take(in: mask, for: t) {
                let r = buffer.baseAddress! + n * Self.recordSize
                r.initializeMemory(as: UInt8.self, repeating: 0, count: Self.recordSize)
                r.storeBytes(of: UInt32(sig), as: UInt32.self)                         // ssi_signo
                r.storeBytes(of: si.code, toByteOffset: 8, as: Int32.self)             // ssi_code
                r.storeBytes(of: UInt32(bitPattern: si.pid), toByteOffset: 12, as: UInt32.self)  // ssi_pid
                r.storeBytes(of: si.uid, toByteOffset: 16, as: UInt32.self)            // ssi_uid
                r.storeBytes(of: si.address, toByteOffset: 72, as: UInt64.self)        // ssi_addr
                n += 1
            }
            if n > 0 { return n * Self.recordSize }
            if nonBlocking || !UThread.isInUThread { throw .wouldBlock }
            // Park until a signal becomes pending; one this thread does not block ends the
            // read with EINTR (or a restart), as Linux's signalfd_dequeue does.
            let me = UThread.current
            let token = signals.pendingObservers.add { _ in me.unpark() }
            defer { signals.pendingObservers.remove(token) }
            if signals.pendingSet(for: t) & mask != 0 { continue }
            if signals.hasDeliverable(for: t) { throw .interrupted }
            UThread.park()
            if UThread.takeInterrupt() || signals.hasDeliverable(for: t) { throw .interrupted }
        }
    }

    var readiness: Readiness {
        let pending = AppThread.current.map { signals.pendingSet(for: $0) } ?? signals.pendingMask
        return pending & mask != 0 ? [.readable] : []
    }

    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { signals.pendingObservers.add(o) }
    func removeReadinessObserver(_ t: Int) { signals.pendingObservers.remove(t) }
}

extension Handlers {
    static func registerSignalFD(_ d: Dispatcher) {
        d.register(.signalfd) { f, p throws(LinuxError) in try signalfd(p, fd: f.a0, mask: f.a1, size: f.a2, flags: 0) }
        d.register(.signalfd4) { f, p throws(LinuxError) in try signalfd(p, fd: f.a0, mask: f.a1, size: f.a2, flags: f.a3) }
    }

    /// fd -1 makes a new signalfd; another fd must be a signalfd, whose mask changes.
    static func signalfd(_ p: LinuxProcess, fd: UInt64, mask: UInt64, size: UInt64, flags: UInt64) throws(LinuxError) -> Int64 {
        guard flags & ~(sockNonBlock | sockCloexec) == 0 else { throw LinuxError(.EINVAL) }
        let set = try loadMask(mask, size: size) & ~SignalSet.unblockable
        let n = Int32(truncatingIfNeeded: fd)
        if n != -1 {
            guard let s = try p.fd(fd).handle as? SignalFD else { throw LinuxError(.EINVAL) }
            s.mask = set
            return Int64(n)
        }
        var status: OpenFlags = .readWrite
        if flags & sockNonBlock != 0 { status.insert(.nonBlocking) }
        let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: "anon_inode:[signalfd]"),
                            handle: SignalFD(signals: p.signals, mask: set), flags: status)
        return Int64(try p.descriptors.install(file, closeOnExec: flags & sockCloexec != 0))
    }
}
