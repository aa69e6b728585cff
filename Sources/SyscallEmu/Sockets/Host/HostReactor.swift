// HostReactor.swift: readiness of host sockets without blocking a kthread: one host
// epoll per kthread (edge-triggered registrations), drained by that kthread's poll hook;
// each event wakes the uthreads parked on the socket and its readiness observers
// (epoll, poll, select of the instance).
import CJunction
import FileSystem
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// What one host socket is known to be ready for, who waits on it, and a generation that
/// moves with every event, so a waiter that saw EAGAIN before an event never sleeps past it.
final class HostReadiness: @unchecked Sendable {
    static let everything: UInt32 = 0x001 | 0x004 | 0x008 | 0x010 | 0x2000

    let id: UInt64
    private let lock = SpinLock()
    private var generation: UInt64 = 0
    /// Bits possibly set (a superset of the truth: cleared only by EAGAIN or a fresh poll).
    private var cached = HostReadiness.everything
    private var waiters: [UThreadRef] = []
    let observers = ReadinessObservers()

    init(id: UInt64) {
        self.id = id
        waiters.reserveCapacity(2)
    }

    var snapshot: (bits: UInt32, generation: UInt64) { lock.withLock { (cached, generation) } }

    /// An event from the host: set the bits, wake waiters and observers.
    func event(_ bits: UInt32) {
        let wake = lock.withLock { () -> [UThreadRef] in
            cached |= bits
            generation &+= 1
            if waiters.isEmpty { return [] }
            defer { waiters.removeAll(keepingCapacity: true) }
            return waiters
        }
        for w in wake { w.unpark() }
        observers.notify(Readiness(rawValue: bits))
    }

    /// Records what a call or a poll found, unless an event came since `seen`.
    func update(clearing bits: UInt32, setting set: UInt32 = 0, ifGeneration seen: UInt64) {
        lock.withLock {
            if generation == seen { cached = (cached & ~bits) | set }
        }
    }

    /// Parks the calling uthread until an event after `seen`, the deadline or a signal.
    func wait(since seen: UInt64, deadline: MonotonicInstant?) -> WaitOutcome {
        let me = UThread.current
        let enrolled = lock.withLock { () -> Bool in
            if generation != seen { return false }
            waiters.append(me)
            return true
        }
        if !enrolled { return .woken }
        let outcome = UThread.wait(until: deadline)
        lock.withLock { if let i = waiters.firstIndex(of: me) { waiters.remove(at: i) } }
        return outcome
    }
}

/// One host epoll, drained by the poll hook of one kthread.
final class HostReactor: @unchecked Sendable {
    /// Moves in a forked child: a reactor made before belongs to the parent's runtime
    /// (its epoll is shared with the parent and no kthread here drains it), so the child
    /// waits in poll(2) on those sockets and never touches the shared registrations.
    static let forkEpoch = Atomic<Int>(0)
    private let epoch = HostReactor.forkEpoch.load(ordering: .relaxed)
    var isThisProcess: Bool { epoch == HostReactor.forkEpoch.load(ordering: .relaxed) }

    // Tunables.
    /// The hook runs at every pass through the scheduler; the epoll_wait it costs is
    /// spent at most this often (an idle kthread's sleep wakes on the epoll fd anyway).
    static let pollInterval: Int64 = 10_000
    /// Events taken per epoll_wait.
    static let batch: Int32 = 64

    let epfd: Int32
    private let lock = SpinLock()
    /// Held while events taken from the host are handed out: a drain waits for a
    /// delivery in flight on another kthread, so it never returns before events the
    /// host had already given out reached their sockets.
    private let delivery = SpinLock()
    private var sockets: [UInt64: HostReadiness] = [:]
    private let registered = Atomic<Int>(0)
    /// Touched only by the owning kthread's hook.
    private var lastPoll: Int64 = 0

    init() throws(Errno) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        epfd = fd
    }

    deinit { Glibc.close(epfd) }

    func register(fd: Int32, _ r: HostReadiness) throws(Errno) {
        lock.withLock { sockets[r.id] = r }
        var ev = epoll_event()
        ev.events = UInt32(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLPRI.rawValue) | (1 << 31)  // EPOLLET
        ev.data.u64 = r.id
        guard epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 else {
            let e = Errno(rawValue: errno)
            lock.withLock { _ = sockets.removeValue(forKey: r.id) }
            throw e
        }
        registered.add(1, ordering: .relaxed)
    }

    func unregister(fd: Int32, _ r: HostReadiness) {
        guard isThisProcess else { return }
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        if lock.withLock({ sockets.removeValue(forKey: r.id) }) != nil { registered.subtract(1, ordering: .relaxed) }
    }

    /// The poll hook: takes the events that came and hands them to their sockets.
    func poll() -> Int {
        if registered.load(ordering: .relaxed) == 0 { return 0 }
        let now = cj_monotonic_ns()
        if now - lastPoll < Self.pollInterval { return 0 }
        lastPoll = now
        return drain()
    }

    /// Takes the events that came now, from any thread of this process (an epoll_wait of
    /// the instance with edge-triggered host sockets, so an edge the host kernel has
    /// already seen is reported at once, as Linux's wakeup would be).
    @discardableResult
    func drain() -> Int {
        guard isThisProcess, registered.load(ordering: .relaxed) > 0 else { return 0 }
        return delivery.withLock {
            withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: Int(Self.batch)) { events -> Int in
                let n = epoll_wait(epfd, events.baseAddress, Self.batch, 0)
                if n <= 0 { return 0 }
                for i in 0..<Int(n) {
                    let id = events[i].data.u64, bits = events[i].events
                    if let r = lock.withLock({ sockets[id] }) { r.event(bits) }
                }
                return Int(n)
            }
        }
    }
}

/// The reactors of an instance: one per kthread, each on its kthread's poll hook. A
/// socket belongs to the reactor of the kthread that made it. Without a runtime (a
/// library user calling in from OS threads) there are none and waits use poll(2).
final class HostReactors: @unchecked Sendable {
    // Set at init, and again in a forked child before its threads run (rebuild).
    @exclusivity(unchecked) private var reactors: [HostReactor] = []
    @exclusivity(unchecked) private var runtime: Runtime?
    @exclusivity(unchecked) private var hooks: [PollHookToken] = []
    private let nextID = Atomic<UInt64>(1)

    init(runtime: Runtime?) {
        build(runtime: runtime)
    }

    private func build(runtime: Runtime?) {
        self.runtime = runtime
        var made: [HostReactor] = []
        if let runtime {
            for k in 0..<runtime.kthreadCount {
                guard let r = try? HostReactor() else { break }
                guard let token = try? runtime.addPollHook(PollHook(name: "host sockets", fd: r.epfd) { r.poll() }, kthread: k) else { break }
                hooks.append(token)
                made.append(r)
            }
        }
        reactors = made
    }

    /// A forked child: the parent's reactors (their epolls are shared with the parent,
    /// their hooks on a runtime that is gone here) are dropped, never drained or
    /// changed (closing this process's descriptor of an epoll leaves the parent's);
    /// new ones serve the child's runtime.
    func rebuild(runtime: Runtime) {
        hooks = []
        build(runtime: runtime)
    }

    /// The reactor `index` falls to (nil: none).
    func reactor(forIndex index: Int) -> HostReactor? {
        reactors.isEmpty ? nil : reactors[index % reactors.count]
    }

    deinit { if let runtime { for h in hooks { _ = runtime.removePollHook(h) } } }

    /// A fresh readiness record for a new socket.
    func makeReadiness() -> HostReadiness { HostReadiness(id: nextID.add(1, ordering: .relaxed).newValue) }

    /// The reactor for a socket made now (nil: waits use poll(2)).
    func reactorForCaller() -> HostReactor? {
        guard !reactors.isEmpty, UThread.isInUThread, let runtime, UThread.isOn(runtime) else { return nil }
        return reactors[(UThread.kthreadIndex ?? 0) % reactors.count]
    }
}
