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

/// An epoll instance: the interest list, keyed by descriptor and open file description,
/// and a ready list as Linux keeps one (ep_poll_callback): a registration whose handle
/// promises to report every change (``FileHandle/reportsEveryReadinessChange``) is looked
/// at only after its observer fired, so epoll_wait costs what is ready, not what is
/// registered; a level-triggered one that was reported goes back on the list (Linux
/// re-checks it at the next wait). Other handles are looked at on every wait.
final class EventPoll: FileHandle, @unchecked Sendable {
    static let epollIn: UInt32 = 0x001, epollOut: UInt32 = 0x004, epollErr: UInt32 = 0x008, epollHup: UInt32 = 0x010
    static let epollRdHup: UInt32 = 0x2000, epollExclusive: UInt32 = 1 << 28, epollWakeup: UInt32 = 1 << 29
    static let epollOneShot: UInt32 = 1 << 30, epollET: UInt32 = 1 << 31

    struct Key: Hashable {
        let fd: Int32
        let file: ObjectIdentifier
    }

    /// Its mutable fields are guarded by the instance's lock.
    final class Item: @unchecked Sendable {
        let key: Key
        @exclusivity(unchecked) weak var file: OpenFile?
        /// Kept to remove the observer once the description is gone (closing it still
        /// closes the handle: the OpenFile's deinit does).
        let handle: any FileHandle
        /// The handle reports every change: the item is looked at only from the ready list.
        let notifies: Bool
        @exclusivity(unchecked) var events: UInt32
        @exclusivity(unchecked) var data: UInt64
        @exclusivity(unchecked) var token = 0
        /// Edge-triggered: readiness may have changed since the last report.
        @exclusivity(unchecked) var edge = true
        /// EPOLLONESHOT after its report, until EPOLL_CTL_MOD.
        @exclusivity(unchecked) var disabled = false
        /// On the ready list (guarded by the instance's lock).
        @exclusivity(unchecked) var queued = false
        /// Still in the interest list (guarded by the instance's lock).
        @exclusivity(unchecked) var registered = true
        init(key: Key, file: OpenFile, events: UInt32, data: UInt64) {
            self.key = key
            self.file = file
            handle = file.handle
            notifies = file.handle.reportsEveryReadinessChange
            self.events = events
            self.data = data
        }
    }

    private let lock = SpinLock()
    @exclusivity(unchecked) private var items: [Key: Item] = [:]
    /// Registrations whose handles do not report every change: looked at on every wait.
    @exclusivity(unchecked) private var polled: [Item] = []
    /// Registrations (of notifying handles) that may be ready, in the order they became so.
    @exclusivity(unchecked) private var ready: [Item] = []
    /// The ready list taken by a collect (reused, so a wait allocates nothing).
    @exclusivity(unchecked) private var spare: [Item] = []
    @exclusivity(unchecked) private var waiters: [UThreadRef] = []
    private let observers = ReadinessObservers()

    var isSeekable: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func size() throws(Errno) -> Int64 { 0 }

    func close() {
        let all = lock.withLock { () -> [Item] in
            defer {
                items.removeAll()
                polled.removeAll()
                ready.removeAll()
            }
            for item in items.values { item.registered = false }
            return Array(items.values)
        }
        for item in all { item.handle.removeReadinessObserver(item.token) }
    }

    /// Readable when some registration would be reported (for poll and nested epoll).
    var readiness: Readiness { collect(max: 1, consume: false).isEmpty ? [] : [.readable] }
    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }

    /// A registered file's readiness may have changed: mark the edge, queue the item,
    /// wake waiters.
    private func changed(_ item: Item) {
        let wake = lock.withLock { () -> [UThreadRef] in
            guard item.registered else { return [] }
            item.edge = true
            if item.notifies && !item.queued {
                item.queued = true
                ready.append(item)
            }
            if waiters.isEmpty { return [] }
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
        let item = Item(key: key, file: file, events: events, data: data)
        // The observer exists before the item is visible, so a racing remove finds its token
        // (a change before then is covered by the `changed` below).
        item.token = file.handle.addReadinessObserver { [weak self, weak item] _ in
            if let self, let item { self.changed(item) }
        }
        let stale: Item?
        do throws(LinuxError) {
            stale = try lock.withLock { () throws(LinuxError) -> Item? in
                // A registration whose description closed (its address may be reused by a
                // new one at the same descriptor) is gone, as Linux drops it at close.
                let old = items[key]
                if let old, old.file === file { throw LinuxError(.EEXIST) }
                if let old { unlink(old) }
                items[key] = item
                if !item.notifies { polled.append(item) }
                return old
            }
        } catch {
            file.handle.removeReadinessObserver(item.token)
            throw error
        }
        stale.map { $0.handle.removeReadinessObserver($0.token) }
        changed(item)
    }

    /// Takes `item` out of the polled and ready lists (lock held; it is already or about
    /// to be out of `items`).
    private func unlink(_ item: Item) {
        item.registered = false
        if !item.notifies, let k = polled.firstIndex(where: { $0 === item }) { polled.remove(at: k) }
        if item.queued, let k = ready.firstIndex(where: { $0 === item }) { ready.remove(at: k) }
        item.queued = false
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
        let item = try lock.withLock { () throws(LinuxError) -> Item in
            guard let item = items[key], item.file === file else { throw LinuxError(.ENOENT) }
            if item.events & Self.epollExclusive != 0 { throw LinuxError(.EINVAL) }  // exclusive registrations cannot change
            item.events = events
            item.data = data
            item.disabled = false
            item.edge = true
            return item
        }
        changed(item)
    }

    func remove(fd: Int32, file: OpenFile) throws(LinuxError) {
        let key = Key(fd: fd, file: ObjectIdentifier(file))
        let found = lock.withLock { () -> Item? in
            guard let item = items[key], item.file === file else { return nil }
            unlink(item)
            return items.removeValue(forKey: key)
        }
        guard let item = found else { throw LinuxError(.ENOENT) }
        item.handle.removeReadinessObserver(item.token)
    }

    /// What `item` reports now (0: nothing), its registration's events, and whether it
    /// is edge-triggered or disabled (lock not held: readiness takes the handle's locks).
    private func check(_ item: Item, _ file: OpenFile) -> (ready: UInt32, events: UInt32) {
        let (events, disabled, edge) = lock.withLock { (item.events, item.disabled, item.edge) }
        if disabled { return (0, events) }
        if events & Self.epollET != 0 && !edge { return (0, events) }
        let r = file.handle.readiness.rawValue
        // POLLERR and POLLHUP are always reported; RDHUP when asked and hung up.
        var ready = r & (events | Self.epollErr | Self.epollHup) & (Self.epollIn | Self.epollOut | Self.epollErr | Self.epollHup)
        if events & Self.epollRdHup != 0 && r & (Self.epollHup | Self.epollRdHup) != 0 { ready |= Self.epollRdHup }
        return (ready, events)
    }

    /// Up to `max` ready (events, data) pairs. `consume`: clear edges and disable one-shot
    /// registrations that are reported, and keep the ready list to what may still be ready.
    func collect(max: Int, consume: Bool) -> [(UInt32, UInt64)] {
        var out: [(UInt32, UInt64)] = []
        var gone: [Item] = []
        if !consume {
            // A look (poll, a nested epoll, the re-check before parking): nothing changes.
            let (queued, others) = lock.withLock { (ready, polled) }
            for item in queued where out.count < max {
                guard let file = item.file else { continue }
                let (r, _) = check(item, file)
                if r != 0 { out.append((r, item.data)) }
            }
            for item in others where out.count < max {
                guard let file = item.file else { continue }
                let (r, _) = check(item, file)
                if r != 0 { out.append((r, item.data)) }
            }
            return out
        }
        // Host sockets learn of events when a kthread drains their host epoll: take
        // what the host has now, so edges the kernel saw are not reported late.
        let others = lock.withLock { polled }
        var drained: [ObjectIdentifier] = []
        for item in others where item.events & Self.epollET != 0 {
            guard let r = (item.handle as? HostSocket)?.eventReactor, !drained.contains(ObjectIdentifier(r)) else { continue }
            drained.append(ObjectIdentifier(r))
            r.drain()
        }
        // The ready list is taken whole; items are off it while they are looked at, so a
        // change meanwhile queues them again and is not lost.
        var taken: [Item] = []
        lock.withLock {
            // `ready` gets the spare (empty) buffer, `taken` the list: no copy, no allocation.
            swap(&ready, &spare)
            swap(&spare, &taken)
            for item in taken { item.queued = false }
        }
        var next = 0
        while next < taken.count && out.count < max {
            let item = taken[next]
            next += 1
            guard let file = item.file else { gone.append(item); continue }
            let (r, events) = check(item, file)
            guard r != 0 else { continue }   // not ready: off the list until it changes
            out.append((r, item.data))
            lock.withLock {
                if events & Self.epollET != 0 { item.edge = false }
                if events & Self.epollOneShot != 0 { item.disabled = true }
                // Level-triggered: looked at again next time (ep_send_events re-queues it).
                else if events & Self.epollET == 0 && item.registered && !item.queued {
                    item.queued = true
                    ready.append(item)
                }
            }
        }
        for item in others where out.count < max {
            guard let file = item.file else { gone.append(item); continue }
            let (r, events) = check(item, file)
            guard r != 0 else { continue }
            out.append((r, item.data))
            lock.withLock {
                if events & Self.epollET != 0 { item.edge = false }
                if events & Self.epollOneShot != 0 { item.disabled = true }
                // To the back: the next wait starts with the others (a wait of one event
                // goes round them all, as Linux's ready list does).
                if item.registered, let k = polled.firstIndex(where: { $0 === item }) {
                    polled.remove(at: k)
                    polled.append(item)
                }
            }
        }
        lock.withLock {
            // What max left unlooked-at stays ready, ahead of what was re-queued (as Linux
            // splices the rest of its list back to the front).
            if next < taken.count {
                var rest: [Item] = []
                rest.reserveCapacity(taken.count - next + ready.count)
                for item in taken[next...] where item.registered && !item.queued {
                    item.queued = true
                    rest.append(item)
                }
                rest.append(contentsOf: ready)
                ready = rest
            }
            taken.removeAll(keepingCapacity: true)
            if spare.capacity < taken.capacity { swap(&spare, &taken) }   // the buffer for next time
        }
        if !gone.isEmpty {
            // Their descriptions closed: the registrations end, observers included.
            let removed = lock.withLock { () -> [Item] in
                gone.compactMap { item in
                    guard item.registered, items[item.key] === item else { return nil }
                    unlink(item)
                    return items.removeValue(forKey: item.key)
                }
            }
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
