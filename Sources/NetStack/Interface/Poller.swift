// Poller.swift: runs an interface on a UThreads runtime: a poll hook per device queue
// (on kthread queue % kthreads) that drains the queue in batches and lets its kthread
// sleep on the device's notification fd when idle, and a timer uthread for ARP retries
// and the TCP timers (it wakes at the earliest TCP deadline).
import NICQueuesCore
import Synchronization
import UThreads

extension NetworkInterface {
    /// Starts processing on `runtime` and announces our address (gratuitous ARP).
    ///
    /// Each device queue gets a poll hook on one kthread: every scheduler pass receives up
    /// to 32 frames and handles them; a pass that finds nothing arms the device's
    /// notification, so a kthread with no work sleeps in epoll on the device's fd and the
    /// next frame wakes it. A timer uthread runs the ARP and reassembly timers.
    public func start(on runtime: Runtime) throws(NetStackError) {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.runtime = runtime
        var tokens: [PollHookToken] = []
        for q in 0..<queueCount {
            // The hook holds the interface: a started interface lives until `stop()` (and
            // until its kthread lets go of the hook, which may run once after removal).
            let hook = PollHook(name: "netstack \(link.linkInfo.name) queue \(q)", fd: link.notificationFD(queue: q)) {
                [self] in pollHook(queue: q)
            }
            do {
                tokens.append(try runtime.addPollHook(hook, kthread: q % runtime.kthreadCount))
            } catch {
                for t in tokens { runtime.removePollHook(t) }
                running.store(false, ordering: .releasing)
                throw .runtime("cannot register the poll hook: \(error)")
            }
        }
        lock.withLock { hooks = tokens }
        announce(now: clock.now)
        timerThread = runtime.spawn { [self] in
            lock.withLock { timerWaker = UThread.current }
            while running.load(ordering: .acquiring) {
                // Until the earliest TCP deadline, at most timerInterval; a connection
                // that schedules an earlier one unparks us (tcpSchedule).
                let wake = lock.withLock { () -> Int64 in
                    let now = MonotonicInstant.now.nanoseconds
                    let w: Int64
                    if case .monotonic = clock { w = nextTimerWake(now: now) } else { w = now &+ timerInterval }
                    timerWakeAt = w
                    return w
                }
                UThread.park(until: MonotonicInstant(nanoseconds: wake))
                if UThread.takeInterrupt() { break }
                lock.withLock { timerWakeAt = .min }   // running: no unparks needed
                tick(now: clock.now)
            }
            lock.withLock {
                timerWaker = nil
                timerWakeAt = .max
            }
        }
    }

    /// Stops the poller: removes the hooks and ends the timer uthread (waiting for it).
    /// Sockets stay usable for what is already queued.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        removeHooks()
        if let t = timerThread {
            t.uthread.interrupt()
            t.join()
        }
        timerThread = nil
    }

    /// One scheduler pass over `queue`: the frames handled, or 1 when frames slipped in
    /// while arming (so the kthread polls again instead of sleeping).
    func pollHook(queue: Int) -> Int {
        if linkDown.load(ordering: .relaxed) { return 0 }
        let n = poll(queue: queue, now: clock.now)
        if n > 0 { return n }
        lock.lock()
        var armed = true
        do { armed = try link.armNotification(queue: queue) } catch { if deviceError == nil { deviceError = error } }
        var gone = false
        if case .peerGone? = deviceError { gone = true }
        lock.unlock()
        // A dead link's fd stays readable: stop polling it (from a uthread: a hook cannot
        // remove hooks), or the kthread would never sleep again.
        if gone, !linkDown.exchange(true, ordering: .acquiringAndReleasing), let runtime {
            runtime.spawn { [self] in removeHooks() }
            return 0
        }
        return armed ? 0 : 1
    }

    /// True once the device reported that its link is gone (a shm peer exited); the
    /// poller has stopped.
    public var isLinkDown: Bool { linkDown.load(ordering: .acquiring) }

    func removeHooks() {
        let tokens = lock.withLock { () -> [PollHookToken] in
            let t = hooks
            hooks = []
            return t
        }
        if let runtime { for t in tokens { runtime.removePollHook(t) } }
    }
}
