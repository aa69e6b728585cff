// EpollCalls.swift: epoll over the readiness of the instance's files (pipes, socket
// pairs, eventfds, devices, other epoll instances): level- and edge-triggered,
// EPOLLONESHOT, registrations that end with their open file description, waits that
// park the uthread and end with EINTR for a signal.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// An epoll instance: the interest list, keyed by descriptor and open file description.
final class EventPoll: FileHandle, @unchecked Sendable {
    static let epollIn: UInt32 = 0x001, epollOut: UInt32 = 0x004, epollErr: UInt32 = 0x008, epollHup: UInt32 = 0x010
    static let epollRdHup: UInt32 = 0x2000, epollExclusive: UInt32 = 1 << 28, epollWakeup: UInt32 = 1 << 29
    static let epollOneShot: UInt32 = 1 << 30, epollET: UInt32 = 1 << 31

    struct Key: Hashable {
        let fd: Int32
        let file: ObjectIdentifier
    }

    final class Item {
        @exclusivity(unchecked) weak var file: OpenFile?
        /// Kept to remove the observer once the description is gone (closing it still
        /// closes the handle: the OpenFile's deinit does).
        let handle: any FileHandle
        @exclusivity(unchecked) var events: UInt32
        @exclusivity(unchecked) var data: UInt64
        @exclusivity(unchecked) var token = 0
        /// Edge-triggered: readiness may have changed since the last report.
        @exclusivity(unchecked) var edge = true
        /// EPOLLONESHOT after its report, until EPOLL_CTL_MOD.
        @exclusivity(unchecked) var disabled = false
        init(file: OpenFile, events: UInt32, data: UInt64) {
            self.file = file
            handle = file.handle
            self.events = events
            self.data = data
        }
    }

    private let lock = SpinLock()
    @exclusivity(unchecked) private var items: [Key: Item] = [:]
    @exclusivity(unchecked) private var waiters: [UThreadRef] = []
    private let observers = ReadinessObservers()

    var isSeekable: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func size() throws(Errno) -> Int64 { 0 }

    func close() {
        let all = lock.withLock { () -> [Item] in
            defer { items.removeAll() }
            return Array(items.values)
        }
        for item in all { item.handle.removeReadinessObserver(item.token) }
    }

    /// Readable when some registration would be reported (for poll and nested epoll).
    var readiness: Readiness { collect(max: 1, consume: false).isEmpty ? [] : [.readable] }
    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }

    /// A registered file's readiness may have changed: mark edges, wake waiters.
    private func changed(_ key: Key) {
        let wake = lock.withLock { () -> [UThreadRef] in
            items[key]?.edge = true
            defer { waiters.removeAll() }
            return waiters
        }
        for w in wake { w.unpark() }
        observers.notify([.readable])
    }

    func add(fd: Int32, file: OpenFile, events: UInt32, data: UInt64) throws(LinuxError) {
        // Linux refuses loops of epoll instances and nesting deeper than 5 (ELOOP).
        if let inner = file.handle as? EventPoll, inner === self || inner.reaches(self, depth: 0) { throw LinuxError(.ELOOP) }
        let key = Key(fd: fd, file: ObjectIdentifier(file))
        let item = Item(file: file, events: events, data: data)
        // The observer exists before the item is visible, so a racing remove finds its token.
        item.token = file.handle.addReadinessObserver { [weak self] _ in self?.changed(key) }
        let stale: Item?
        do throws(LinuxError) {
            stale = try lock.withLock { () throws(LinuxError) -> Item? in
                // A registration whose description closed (its address may be reused by a
                // new one at the same descriptor) is gone, as Linux drops it at close.
                let old = items[key]
                if let old, old.file === file { throw LinuxError(.EEXIST) }
                items[key] = item
                return old
            }
        } catch {
            file.handle.removeReadinessObserver(item.token)
            throw error
        }
        stale.map { $0.handle.removeReadinessObserver($0.token) }
        changed(key)
    }

    /// Whether `target` is this instance or one it watches, directly or through others
    /// (depth counts the nesting: past 5 counts as a loop, as Linux's limit).
    func reaches(_ target: EventPoll, depth: Int) -> Bool {
        if depth > 5 { return true }
        let inner = lock.withLock { items.values.compactMap { $0.handle as? EventPoll } }
        return inner.contains { $0 === target || $0.reaches(target, depth: depth + 1) }
    }

    func modify(fd: Int32, file: OpenFile, events: UInt32, data: UInt64) throws(LinuxError) {
        let key = Key(fd: fd, file: ObjectIdentifier(file))
        try lock.withLock { () throws(LinuxError) in
            guard let item = items[key], item.file === file else { throw LinuxError(.ENOENT) }
            if item.events & Self.epollExclusive != 0 { throw LinuxError(.EINVAL) }  // exclusive registrations cannot change
            item.events = events
            item.data = data
            item.disabled = false
            item.edge = true
        }
        changed(key)
    }

    func remove(fd: Int32, file: OpenFile) throws(LinuxError) {
        let key = Key(fd: fd, file: ObjectIdentifier(file))
        let found = lock.withLock { () -> Item? in
            guard let item = items[key], item.file === file else { return nil }
            return items.removeValue(forKey: key)
        }
        guard let item = found else { throw LinuxError(.ENOENT) }
        item.handle.removeReadinessObserver(item.token)
    }

    /// Up to `max` ready (events, data) pairs. `consume`: clear edges and disable one-shot
    /// registrations that are reported.
    func collect(max: Int, consume: Bool) -> [(UInt32, UInt64)] {
        let snapshot = lock.withLock { Array(items) }
        if consume {
            // Host sockets learn of events when a kthread drains their host epoll: take
            // what the host has now, so edges the kernel saw are not reported late.
            var drained: [ObjectIdentifier] = []
            for (_, item) in snapshot where item.events & Self.epollET != 0 {
                guard let r = (item.handle as? HostSocket)?.eventReactor, !drained.contains(ObjectIdentifier(r)) else { continue }
                drained.append(ObjectIdentifier(r))
                r.drain()
            }
        }
        var out: [(UInt32, UInt64)] = []
        var gone: [Key] = []
        for (key, item) in snapshot {
            if out.count >= max { break }
            guard let file = item.file else { gone.append(key); continue }
            let (events, disabled, edge) = lock.withLock { (item.events, item.disabled, item.edge) }
            if disabled { continue }
            if events & Self.epollET != 0 && !edge { continue }
            let r = file.handle.readiness.rawValue
            // POLLERR and POLLHUP are always reported; RDHUP when asked and hung up.
            var ready = r & (events | Self.epollErr | Self.epollHup) & (Self.epollIn | Self.epollOut | Self.epollErr | Self.epollHup)
            if events & Self.epollRdHup != 0 && r & (Self.epollHup | Self.epollRdHup) != 0 { ready |= Self.epollRdHup }
            guard ready != 0 else { continue }
            out.append((ready, item.data))
            if consume {
                lock.withLock {
                    if events & Self.epollET != 0 { item.edge = false }
                    if events & Self.epollOneShot != 0 { item.disabled = true }
                }
            }
        }
        if !gone.isEmpty {
            // Their descriptions closed: the registrations end, observers included.
            let removed = lock.withLock { gone.compactMap { items.removeValue(forKey: $0) } }
            for item in removed { item.handle.removeReadinessObserver(item.token) }
        }
        return out
    }

    /// epoll_wait: reports what is ready now, else parks until something changes, the
    /// deadline, or a signal (EINTR).
    func wait(max: Int, deadline: MonotonicInstant?, process p: LinuxProcess) throws(LinuxError) -> [(UInt32, UInt64)] {
        var polledHooks = false
        while true {
            let ready = collect(max: max, consume: true)
            if !ready.isEmpty {
                // A program whose epoll_wait always has something ready never parks
                // either (redis-benchmark at its end keeps a write handler that writes
                // nothing): now and then, the hooks run here too.
                _ = UThread.runPollHooks(every: 16)
                return ready
            }
            if let deadline, MonotonicInstant.now >= deadline {
                // A wait that will not park: first let this kthread's poll hooks (NetStack's
                // receive) run, as Linux's softirqs have by the time epoll_wait(0) looks. A
                // program polling with a zero timeout in a loop never parks, so the
                // scheduler loop that runs them otherwise would not come round.
                if !polledHooks {
                    polledHooks = true
                    if UThread.runPollHooks() > 0 { continue }
                }
                return []
            }
            guard UThread.isInUThread else { return [] }
            let me = UThread.current
            lock.withLock { waiters.append(me) }
            // Re-check after enrolling: a change between collect and here would be lost.
            if !collect(max: 1, consume: false).isEmpty { continue }
            let outcome = UThread.wait(until: deadline)
            if outcome == .interrupted, let t = AppThread.current, p.signals.hasDeliverable(for: t) {
                throw LinuxError.restartNoHandler
            }
        }
    }
}

extension Handlers {
    static func registerEpoll(_ d: Dispatcher) {
        let create: SyscallHandler = { f, p throws(LinuxError) in
            let cloexec: UInt64 = 0o2000000
            if f.number == SyscallNumber.epoll_create.rawValue {
                guard Int32(truncatingIfNeeded: f.a0) > 0 else { throw LinuxError(.EINVAL) }  // epoll_create(size)
            } else {
                guard f.a0 & ~cloexec == 0 else { throw LinuxError(.EINVAL) }
            }
            let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: "anon_inode:[eventpoll]"),
                                handle: EventPoll(), flags: .readWrite)
            return Int64(try p.descriptors.install(file, closeOnExec: f.number == SyscallNumber.epoll_create1.rawValue && f.a0 & cloexec != 0))
        }
        d.register(.epoll_create, create)
        d.register(.epoll_create1, create)
        d.register(.epoll_ctl) { f, p throws(LinuxError) in
            // Linux's order: the event (for every op but DEL), epfd, fd, a target that
            // cannot be polled (EPERM), epfd not an epoll or the target itself (EINVAL),
            // EPOLLEXCLUSIVE's rules, then the op.
            let op = Int32(truncatingIfNeeded: f.a1)
            var events: UInt32 = 0, data: UInt64 = 0
            if op != 2 {
                events = try UserMemory.load(UInt32.self, at: f.a3)
                data = try UserMemory.load(UInt64.self, at: f.a3 + 4)
            }
            let epFile = try p.fd(f.a0)
            let fd = Int32(truncatingIfNeeded: f.a2)
            let file = try p.fd(f.a2)
            // Regular files and directories are always ready: Linux refuses them (not an
            // anonymous inode with a host descriptor behind it: a pidfd).
            if file.handle.hostDescriptor != nil && file.location.node.kind == .regular && !(file.location.node is AnonymousNode)
                || file.location.node.kind == .directory || (file.handle as? any SpecialDevice)?.supportsPoll == false {
                throw LinuxError(.EPERM)
            }
            guard let ep = epFile.handle as? EventPoll, epFile !== file else { throw LinuxError(.EINVAL) }
            if op != 2 && events & EventPoll.epollExclusive != 0 {
                // Only with ADD, only with IN/OUT/ERR/HUP/WAKEUP/ET, never on an epoll
                // file (ep_ctl's checks). Waiters are all woken, not one: correct for
                // the non-blocking listeners EPOLLEXCLUSIVE is used with.
                let allowed = EventPoll.epollIn | EventPoll.epollOut | EventPoll.epollErr | EventPoll.epollHup
                    | EventPoll.epollWakeup | EventPoll.epollET | EventPoll.epollExclusive
                guard op == 1, events & ~allowed == 0, !(file.handle is EventPoll) else { throw LinuxError(.EINVAL) }
            }
            switch op {
            case 1: try ep.add(fd: fd, file: file, events: events, data: data)  // EPOLL_CTL_ADD
            case 3: try ep.modify(fd: fd, file: file, events: events, data: data)  // EPOLL_CTL_MOD
            case 2: try ep.remove(fd: fd, file: file)  // EPOLL_CTL_DEL
            default: throw LinuxError(.EINVAL)
            }
            return 0
        }
        d.register(.epoll_wait) { f, p throws(LinuxError) in
            try epollWait(p, epfd: f.a0, events: f.a1, max: f.a2, timeout: milliseconds(f.a3))
        }
        d.register(.epoll_pwait) { f, p throws(LinuxError) in
            try withMask(p, f.a4, f.a5) { () throws(LinuxError) in try epollWait(p, epfd: f.a0, events: f.a1, max: f.a2, timeout: milliseconds(f.a3)) }
        }
        d.register(.epoll_pwait2) { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a3 != 0 {
                timeout = try UserTimespec.loadValid(at: f.a3).totalNanoseconds
            }
            return try withMask(p, f.a4, f.a5) { () throws(LinuxError) in try epollWait(p, epfd: f.a0, events: f.a1, max: f.a2, timeout: timeout) }
        }
    }

    static func milliseconds(_ v: UInt64) -> Int64? {
        let ms = Int32(truncatingIfNeeded: v)
        return ms < 0 ? nil : Int64(ms) * 1_000_000
    }

    static func epoll(_ p: LinuxProcess, _ fd: UInt64) throws(LinuxError) -> EventPoll {
        guard let ep = try p.fd(fd).handle as? EventPoll else { throw LinuxError(.EINVAL) }
        return ep
    }

    static func epollWait(_ p: LinuxProcess, epfd: UInt64, events: UInt64, max: UInt64, timeout: Int64?) throws(LinuxError) -> Int64 {
        // Linux: epfd, maxevents, access_ok on the array, an epfd that is no epoll; the
        // array is written only for the events there are.
        let epFile = try p.fd(epfd)
        let n = Int32(truncatingIfNeeded: max)
        guard n > 0, n <= Int32.max / 12 else { throw LinuxError(.EINVAL) }
        guard UserMemory.accessOK(events, UInt64(n) * 12) else { throw LinuxError(.EFAULT) }
        guard let ep = epFile.handle as? EventPoll else { throw LinuxError(.EINVAL) }
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: .nanoseconds($0)) }
        let ready = try ep.wait(max: Int(n), deadline: deadline, process: p)
        for (i, (ev, data)) in ready.enumerated() {  // struct epoll_event is packed: 4 + 8 bytes
            try UserMemory.store(ev, at: events + UInt64(12 * i))
            try UserMemory.store(data, at: events + UInt64(12 * i + 4))
        }
        return Int64(ready.count)
    }

    /// Runs `body` with the thread's mask replaced by the one at `mask` (if not NULL),
    /// as ppoll and epoll_pwait do; after EINTR the handler's frame restores it.
    static func withMask(_ p: LinuxProcess, _ mask: UInt64, _ size: UInt64, _ body: () throws(LinuxError) -> Int64) throws(LinuxError) -> Int64 {
        guard mask != 0, let t = AppThread.current else { return try body() }
        p.signals.beginTemporaryMask(of: t, try loadMask(mask, size: size))
        do {
            let r = try body()
            p.signals.endTemporaryMask(of: t)
            return r
        } catch {
            if !LinuxError.isRestart(-Int64(error.code)) { p.signals.endTemporaryMask(of: t) }
            throw error
        }
    }
}
