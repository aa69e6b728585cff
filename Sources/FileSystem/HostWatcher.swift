// HostWatcher.swift: readiness of host kernel objects (the host pipes a fork promotes
// libOS pipes to, pidfds): one edge-triggered epoll instance, drained by a poll hook on
// every kthread, wakes uthreads parked on an fd and calls the fd's readiness observer.
import CUThreads
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Waits on host descriptors without blocking a kthread.
public final class HostWatcher: @unchecked Sendable {
    /// The instance's watcher (one per process: a forked child makes its own epoll).
    public static let shared = HostWatcher()

    // Tunables: events taken per poll.
    static let batch = 32

    final class Entry {
        let waiters = WaitList()
        var notify: (@Sendable () -> Void)?
    }

    private let lock = SpinLock()
    private var epfd: Int32 = -1
    private var entries: [Int32: Entry] = [:]
    private var runtime: Runtime?
    private var hooks: [PollHookToken] = []
    /// The epoll fd and how many fds it watches, read by the poll hook without the lock.
    private let pollFD = Atomic<Int32>(-1)
    private let watched = Atomic<Int>(0)

    init() {}

    /// Drains events on every kthread of `runtime` (the instance's, set once by LibOS;
    /// again in a forked child with its new runtime).
    public func attach(to runtime: Runtime) {
        let fd = lock.withLock { () -> Int32 in
            if epfd < 0 { epfd = epoll_create1(Int32(EPOLL_CLOEXEC)) }
            pollFD.store(epfd, ordering: .releasing)
            self.runtime = runtime
            hooks = []
            return epfd
        }
        guard fd >= 0 else { return }
        var tokens: [PollHookToken] = []
        for k in 0..<runtime.kthreadCount {
            if let t = try? runtime.addPollHook(PollHook(name: "host-watcher", fd: fd) { HostWatcher.shared.poll() }, kthread: k, wake: false) {
                tokens.append(t)
            }
        }
        lock.withLock { hooks = tokens }
    }

    /// In a forked child: the parent's epoll instance is shared with it, so the child
    /// makes its own, registers every watched descriptor again and forgets the parent's
    /// waiters (their uthreads do not exist here).
    public func afterFork(runtime: Runtime) {
        lock.withLock {
            epfd = epoll_create1(Int32(EPOLL_CLOEXEC))  // the inherited one stays open: the parent's
            pollFD.store(epfd, ordering: .releasing)
            for (fd, e) in entries {
                _ = e.waiters.takeAll()
                Self.add(epfd, fd)
            }
        }
        attach(to: runtime)
    }

    private static func add(_ epfd: Int32, _ fd: Int32) {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        ev.data.fd = fd
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
    }

    /// Starts watching `fd`; `notify` (if any) runs whenever its readiness may have changed.
    public func watch(_ fd: Int32, notify: (@Sendable () -> Void)? = nil) {
        lock.withLock {
            if epfd < 0 { epfd = epoll_create1(Int32(EPOLL_CLOEXEC)); pollFD.store(epfd, ordering: .releasing) }
            let e = Entry()
            if entries[fd] == nil { watched.add(1, ordering: .relaxed) }
            e.notify = notify
            entries[fd] = e
            Self.add(epfd, fd)
        }
    }

    /// Stops watching `fd` (before it is closed); its waiters are woken.
    public func unwatch(_ fd: Int32) {
        let woken = lock.withLock { () -> [Waiter] in
            guard let e = entries.removeValue(forKey: fd) else { return [] }
            watched.subtract(1, ordering: .relaxed)
            _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
            return e.waiters.takeAll()
        }
        woken.wakeAll()
    }

    /// Parks the caller until `fd` reports one of `events` (poll(2) bits) or the wait is
    /// interrupted (`.interrupted`). The fd must be watched.
    public func wait(_ fd: Int32, for events: Int16) throws(Errno) {
        while true {
            guard let w = lock.withLock({ entries[fd]?.waiters.enroll() }) else { return }
            // Enrolled first, then checked: an edge after this check wakes us.
            var p = pollfd(fd: fd, events: events, revents: 0)
            if Glibc.poll(&p, 1, 0) > 0 {
                lock.withLock { entries[fd]?.waiters.withdraw(w) }
                return
            }
            WaitList.block(w)
            if WaitList.interrupted() {
                lock.withLock { entries[fd]?.waiters.withdraw(w) }
                throw .interrupted
            }
        }
    }

    /// The poll hook: takes the ready events, wakes waiters, calls observers.
    func poll() -> Int {
        guard watched.load(ordering: .relaxed) > 0 else { return 0 }
        let fd = pollFD.load(ordering: .acquiring)
        guard fd >= 0 else { return 0 }
        return withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: Self.batch) { events -> Int in
            let n = epoll_wait(fd, events.baseAddress, Int32(Self.batch), 0)
            guard n > 0 else { return 0 }
            for i in 0..<Int(n) {
                let target = events[i].data.fd
                let (woken, notify) = lock.withLock { () -> ([Waiter], (@Sendable () -> Void)?) in
                    guard let e = entries[target] else { return ([], nil) }
                    return (e.waiters.takeAll(), e.notify)
                }
                woken.wakeAll()
                notify?()
            }
            return Int(n)
        }
    }
}
