// Scheduler.swift: switching between uthreads, park/unpark, the kthread loop (run queue,
// inbox, global queue, stealing, timers, poll hooks) and sleeping in the kernel when idle.
import CUThreads
import NUMA
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Tunables.
/// Every this many switches a leaving uthread goes through the scheduler loop instead of
/// straight to the next uthread, so timers, poll hooks, the inbox and the global queue
/// are served while the run queue stays busy.
@usableFromInline let slowPathInterval: UInt32 = 64
/// Most uthreads taken from the global queue at once.
let globalBatch = 32

@usableFromInline
enum Scheduler {
    // MARK: - Switching

    /// Waits until `n`'s registers are saved (it may be leaving another kthread right
    /// now), then claims it.
    @inline(__always) @usableFromInline
    static func claim(_ n: UT) {
        while cj_load_acquire_u8(&n.pointee.busy) != 0 { cj_cpu_relax() }
        n.pointee.busy = 1
    }

    /// Takes the current uthread `t` off the CPU: runs the next uthread of the local run
    /// queue directly, or returns to the kthread's scheduler loop. Returns when `t` is
    /// resumed, possibly on another kthread.
    @inline(__always) @usableFromInline
    static func switchAway(_ t: UT, _ k: KT) {
        k.pointee.tick &+= 1
        k.pointee.switches &+= 1
        if k.pointee.tick % slowPathInterval != 0, let n = k.pointee.runq.pop() {
            if n != t {
                claim(n)
                n.pointee.home = UnsafeMutableRawPointer(k)
                k.pointee.area.current = n
                cj_switch(&t.pointee.saved_sp, n.pointee.saved_sp, &t.pointee.busy)
            }
        } else {
            k.pointee.area.current = nil
            cj_switch(&t.pointee.saved_sp, k.pointee.area.scheduler_sp, &t.pointee.busy)
        }
        afterResume()
    }

    /// Run after every switch lands: releases the stack of a uthread that just exited.
    @inline(__always) @usableFromInline
    static func afterResume() {
        let k = KT.currentFast
        if let dead = k.pointee.pendingRelease {
            k.pointee.pendingRelease = nil
            release(dead)
        }
    }

    // MARK: - Park and unpark (a one-permit protocol, like Rust's thread::park)

    @inline(__always) @usableFromInline
    static func park(_ t: UT, _ k: KT) {
        if cj_cas_u32(&t.pointee.park_state, UInt32(CJ_PARK_NOTIFIED), UInt32(CJ_PARK_EMPTY)) { return }
        if cj_cas_u32(&t.pointee.park_state, UInt32(CJ_PARK_EMPTY), UInt32(CJ_PARK_PARKED)) {
            switchAway(t, k)
            return
        }
        // An unpark arrived between the two: consume it.
        cj_store_release_u32(&t.pointee.park_state, UInt32(CJ_PARK_EMPTY))
    }

    /// Parks until unparked or until `deadline`; returns true when the timer ended it.
    @usableFromInline
    static func park(_ t: UT, _ k: KT, until deadline: Int64) -> Bool {
        k.addTimer(t, deadline: deadline)
        park(t, k)
        k.cancelTimer(t)
        return t.pointee.timed_out != 0
    }

    @inline(__always) @usableFromInline
    static func unpark(_ t: UT) {
        while true {
            let s = cj_load_acquire_u32(&t.pointee.park_state)
            if s == UInt32(CJ_PARK_NOTIFIED) { return }
            if s == UInt32(CJ_PARK_EMPTY) {
                if cj_cas_u32(&t.pointee.park_state, s, UInt32(CJ_PARK_NOTIFIED)) { return }
                continue
            }
            if cj_cas_u32(&t.pointee.park_state, s, UInt32(CJ_PARK_EMPTY)) {
                makeReady(t)
                return
            }
        }
    }

    /// Queues a runnable uthread: on the calling kthread when it belongs to the same
    /// runtime, else in its home kthread's inbox or the runtime's global queue.
    @inline(__always) @usableFromInline
    static func makeReady(_ t: UT) {
        let rt = t.pointee.runtime.unsafelyUnwrapped.assumingMemoryBound(to: RuntimeCore.self)
        if let k = KT.current, k.pointee.runtime == rt {
            if rt.pointee.placement == .home, let home = t.pointee.home, home != UnsafeMutableRawPointer(k) {
                home.assumingMemoryBound(to: KThread.self).deliver(t)
                return
            }
            pushLocal(t, k)
        } else if let home = t.pointee.home {
            home.assumingMemoryBound(to: KThread.self).deliver(t)
        } else {
            pushGlobal(rt, t)
        }
    }

    @inline(__always) @usableFromInline
    static func pushLocal(_ t: UT, _ k: KT) {
        let backlog = k.pointee.runq.approximateCount > 0
        if !k.pointee.runq.push(t) {
            var spill = k.pointee.runq.takeHalfForOverflow()
            spill.append(t)
            pushGlobal(k.pointee.runtime, list: spill)
        } else if backlog {
            wakeIdle(k.pointee.runtime)
        }
    }

    static func pushGlobal(_ rt: RT, _ t: UT) {
        var one = RunList()
        one.append(t)
        pushGlobal(rt, list: one)
    }

    static func pushGlobal(_ rt: RT, list: RunList) {
        var list = list
        let n = list.count
        rt.pointee.globalLock.lock()
        while let t = list.popFirst() { rt.pointee.global.append(t) }
        rt.pointee.globalCount.add(n, ordering: .relaxed)
        rt.pointee.globalLock.unlock()
        wakeIdle(rt)
    }

    /// Wakes one sleeping kthread when work is waiting and no kthread is spinning.
    @usableFromInline
    static func wakeIdle(_ rt: RT) {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if rt.pointee.spinning.load(ordering: .relaxed) > 0 { return }
        if rt.pointee.sleepers.load(ordering: .relaxed) == 0 { return }
        for i in 0..<rt.pointee.count {
            let k = rt.pointee.kthreads + i
            if k.pointee.sleeping.load(ordering: .relaxed),
               k.pointee.sleeping.exchange(false, ordering: .acquiringAndReleasing) {
                Host.ring(k.pointee.doorbell)
                return
            }
        }
    }

    static func wakeAll(_ rt: RT) {
        for i in 0..<rt.pointee.count {
            let k = rt.pointee.kthreads + i
            k.pointee.sleeping.store(false, ordering: .sequentiallyConsistent)
            Host.ring(k.pointee.doorbell)
        }
    }

    // MARK: - Spawn and exit

    @usableFromInline
    static func spawn(_ rt: RT, box: UnsafeMutableRawPointer, on kthread: Int?) -> UT {
        if let kthread {
            require(kthread >= 0 && kthread < rt.pointee.count, "spawn(on: \(kthread)): this runtime has kthreads 0..<\(rt.pointee.count)")
        }
        require(!rt.pointee.terminated.load(ordering: .relaxed), "UThreads: spawn on a runtime that has shut down")
        let k = KT.current.flatMap { $0.pointee.runtime == rt ? $0 : nil }
        // While it shuts down, only its own uthreads may still spawn (it waits for them).
        require(k != nil || !rt.pointee.stopping.load(ordering: .relaxed), "UThreads: spawn on a runtime that is shutting down")
        let t = allocateStack(rt, k)
        t.pointee.saved_sp = cj_prepare_stack(rt.pointee.geometry.stackTop(t), { arg in
            Scheduler.uthreadMain(arg!.assumingMemoryBound(to: cj_uthread.self))
        }, UnsafeMutableRawPointer(t))
        t.pointee.busy = 0
        t.pointee.timed_out = 0
        t.pointee.granted = 0
        t.pointee.interrupted = 0
        t.pointee.park_state = UInt32(CJ_PARK_EMPTY)
        t.pointee.refs = 2
        t.pointee.done = 0
        t.pointee.id = rt.pointee.nextID.add(1, ordering: .relaxed).oldValue
        t.pointee.link = nil
        t.pointee.box = box
        t.pointee.joiner = nil
        t.pointee.home = nil
        t.pointee.runtime = UnsafeMutableRawPointer(rt)
        t.pointee.timer_index = -1
        t.pointee.timer_owner = nil
        t.pointee.in_wait_queue = 0
        rt.pointee.live.add(1, ordering: .relaxed)
        if let kthread {
            (rt.pointee.kthreads + kthread).deliver(t)
        } else if let k {
            pushLocal(t, k)
        } else {
            pushGlobal(rt, t)
        }
        return t
    }

    static func allocateStack(_ rt: RT, _ k: KT?) -> UT {
        if let k, let t = k.pointee.stackCache.popLast() { return t }
        rt.pointee.poolLock.lock()
        let pooled = rt.pointee.pool.popLast()
        rt.pointee.poolSize.store(rt.pointee.pool.count, ordering: .relaxed)
        rt.pointee.poolLock.unlock()
        if let pooled { return pooled }
        switch rt.pointee.geometry.allocate() {
        case .success(let t): return t
        case .failure(let e): fatalError("UThreads: cannot map a uthread stack of \(rt.pointee.geometry.mapSize) bytes: \(e)")
        }
    }

    /// Drops one reference to a finished uthread's stack; the last one recycles it.
    @usableFromInline
    static func release(_ t: UT) {
        if cj_fetch_sub_u32(&t.pointee.refs, 1) != 1 { return }
        let rt = t.pointee.runtime.unsafelyUnwrapped.assumingMemoryBound(to: RuntimeCore.self)
        if let k = KT.current, k.pointee.runtime == rt, k.pointee.stackCache.count < stackCacheCapacity {
            k.pointee.stackCache.append(t)
            return
        }
        rt.pointee.poolLock.lock()
        if !rt.pointee.terminated.load(ordering: .relaxed), rt.pointee.pool.count < 1024 {
            rt.pointee.pool.append(t)
            rt.pointee.poolSize.store(rt.pointee.pool.count, ordering: .relaxed)
            if !rt.pointee.endedSinceReturn.load(ordering: .relaxed) { rt.pointee.endedSinceReturn.store(true, ordering: .relaxed) }
            rt.pointee.poolLock.unlock()
            return
        }
        rt.pointee.poolLock.unlock()
        rt.pointee.geometry.unmap(t)
    }

    /// The body of every uthread: first entry after the trampoline.
    static func uthreadMain(_ t: UT) -> Never {
        afterResume()
        runBody(t)
        exit(t)
    }

    @inline(never)
    static func runBody(_ t: UT) {
        let box = Unmanaged<AnyEntryBox>.fromOpaque(t.pointee.box!).takeRetainedValue()
        t.pointee.box = nil
        box.run()
    }

    static func exit(_ t: UT) -> Never {
        let k = KT.currentFast
        let rt = k.pointee.runtime
        if cj_exchange_u32(&t.pointee.done, 1) == 2 {
            _ = cj_futex_wake(&t.pointee.done, Int32.max)
        }
        let j = cj_exchange_ptr(
            UnsafeMutableRawPointer(t.pointer(to: \.joiner)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
            UnsafeMutableRawPointer(bitPattern: 1))
        if let j, j != UnsafeMutableRawPointer(bitPattern: 1) {
            unpark(j.assumingMemoryBound(to: cj_uthread.self))
        }
        if rt.pointee.live.subtract(1, ordering: .acquiringAndReleasing).newValue == 0,
           rt.pointee.stopping.load(ordering: .sequentiallyConsistent) {
            wakeAll(rt)
        }
        k.pointee.pendingRelease = t
        k.pointee.tick &+= 1
        k.pointee.switches &+= 1
        if let n = k.pointee.runq.pop() {
            claim(n)
            n.pointee.home = UnsafeMutableRawPointer(k)
            k.pointee.area.current = n
            cj_switch(&k.pointee.area.exit_sp, n.pointee.saved_sp, &t.pointee.busy)
        } else {
            k.pointee.area.current = nil
            cj_switch(&k.pointee.area.exit_sp, k.pointee.area.scheduler_sp, &t.pointee.busy)
        }
        fatalError("UThreads internal error: an exited uthread was resumed")
    }

    // MARK: - The kthread

    static func kthreadMain(_ k: KT) {
        let rt = k.pointee.runtime
        k.pointee.area.kthread = UnsafeMutableRawPointer(k)
        k.pointee.area.index = Int32(k.pointee.index)
        let rc = cj_area_install(&k.pointee.area)
        if rc != 0 {
            k.pointee.area.tid = rc
            signalStarted(rt)
            return
        }
        // On the runtime's node first: pinning then picks among that node's CPUs.
        if let node = rt.pointee.geometry.node { try? NUMA.runCurrentThread(on: node) }
        if rt.pointee.pin {
            _ = cj_pin_to_nth_allowed_cpu(Int32(k.pointee.index))
        }
        rt.pointee.onKThreadStart?(k.pointee.index)
        signalStarted(rt)
        loop(k)
        for t in k.pointee.stackCache { rt.pointee.geometry.unmap(t) }
        k.pointee.stackCache = []
        k.pointee.hookSnapshot = []
        cj_area_uninstall()
    }

    static func signalStarted(_ rt: RT) {
        _ = cj_fetch_add_u32(&rt.pointee.started, 1)
        _ = cj_futex_wake(&rt.pointee.started, Int32.max)
    }

    static func loop(_ k: KT) {
        let rt = k.pointee.runtime
        cj_scheduler_enter(&k.pointee.area)
        while true {
            afterResume()
            if rt.pointee.quiesceRequested.load(ordering: .relaxed) { waitWhileQuiesced(rt) }
            serviceTimersAndHooks(k)
            if let n = findRunnable(k) {
                claim(n)
                n.pointee.home = UnsafeMutableRawPointer(k)
                k.pointee.area.current = n
                k.pointee.switches &+= 1
                cj_scheduler_leave(&k.pointee.area)
                cj_switch(&k.pointee.area.scheduler_sp, n.pointee.saved_sp, &k.pointee.area.scheduler_busy)
                cj_scheduler_enter(&k.pointee.area)
                continue
            }
            if rt.pointee.stopping.load(ordering: .sequentiallyConsistent), rt.pointee.live.load(ordering: .sequentiallyConsistent) == 0 {
                return
            }
            idle(k)
        }
    }

    static func serviceTimersAndHooks(_ k: KT) {
        if k.pointee.earliestTimer.load(ordering: .relaxed) != .max {
            _ = k.fireTimers(now: cj_monotonic_ns())
        }
        _ = runHooks(k)
    }

    static func runHooks(_ k: KT) -> Int {
        let v = k.pointee.hookVersion.load(ordering: .acquiring)
        if v != k.pointee.hookSnapshotVersion {
            k.pointee.hookLock.lock()
            k.pointee.hookSnapshot = k.pointee.hooks
            k.pointee.hookLock.unlock()
            k.pointee.hookSnapshotVersion = v
        }
        if k.pointee.hookSnapshot.isEmpty { return 0 }
        var work = 0
        for hook in k.pointee.hookSnapshot { work += hook.poll() }
        k.pointee.polls &+= 1
        return work
    }

    /// The next uthread for this kthread: local queue, inbox, global queue, then half of
    /// another kthread's queue.
    static func findRunnable(_ k: KT) -> UT? {
        if let t = k.pointee.runq.pop() { return t }
        var list = takeInbox(k)
        if let first = list.popFirst() {
            while let t = list.popFirst() { pushLocal(t, k) }
            return first
        }
        var batch = takeGlobalBatch(k.pointee.runtime)
        if let first = batch.popFirst() {
            while let t = batch.popFirst() { pushLocal(t, k) }
            return first
        }
        return steal(k)
    }

    static func steal(_ k: KT) -> UT? {
        let rt = k.pointee.runtime
        let n = rt.pointee.count
        if n < 2 { return nil }
        let start = Int(k.pointee.nextRandom() % UInt64(n))
        for i in 0..<n {
            let v = rt.pointee.kthreads + ((start + i) % n)
            if v == k || v.pointee.runq.approximateCount == 0 { continue }
            let moved = v.pointee.runq.stealHalf(into: k.pointee.runq)
            if moved > 0 {
                k.pointee.stolen &+= UInt64(moved)
                return k.pointee.runq.pop()
            }
        }
        return nil
    }

    /// For a yield: fires this kthread's due timers and moves its inbox (and, when the
    /// local queue is empty, a batch of the global queue) into the local queue, ahead of
    /// the yielder. Returns whether anything is queued locally.
    @usableFromInline
    static func gatherForYield(_ k: KT) -> Bool {
        let due = k.pointee.earliestTimer.load(ordering: .relaxed)
        if due != .max, due <= cj_monotonic_ns() { _ = k.fireTimers(now: cj_monotonic_ns()) }
        var list = takeInbox(k)
        while let t = list.popFirst() { pushLocal(t, k) }
        if k.pointee.runq.approximateCount == 0 {
            var batch = takeGlobalBatch(k.pointee.runtime)
            while let t = batch.popFirst() { pushLocal(t, k) }
        }
        return k.pointee.runq.approximateCount > 0
    }

    /// Everything in `k`'s inbox (empty when there is nothing, without the lock).
    static func takeInbox(_ k: KT) -> RunList {
        if k.pointee.inboxCount.load(ordering: .relaxed) == 0 { return RunList() }
        k.pointee.inboxLock.lock()
        let list = k.pointee.inbox.takeAll()
        k.pointee.inboxCount.store(0, ordering: .relaxed)
        k.pointee.inboxLock.unlock()
        return list
    }

    /// Up to `globalBatch` uthreads from the head of the runtime's global queue.
    static func takeGlobalBatch(_ rt: RT) -> RunList {
        var batch = RunList()
        if rt.pointee.globalCount.load(ordering: .relaxed) == 0 { return batch }
        rt.pointee.globalLock.lock()
        let take = min(rt.pointee.globalCount.load(ordering: .relaxed), max(1, globalBatch))
        for _ in 0..<take { if let t = rt.pointee.global.popFirst() { batch.append(t) } }
        rt.pointee.globalCount.subtract(batch.count, ordering: .relaxed)
        rt.pointee.globalLock.unlock()
        return batch
    }

    /// True when there may be something for this kthread to run.
    static func workVisible(_ k: KT) -> Bool {
        let rt = k.pointee.runtime
        if k.pointee.runq.approximateCount > 0 || k.pointee.inboxCount.load(ordering: .relaxed) > 0
            || rt.pointee.globalCount.load(ordering: .relaxed) > 0 { return true }
        if k.pointee.earliestTimer.load(ordering: .relaxed) <= cj_monotonic_ns() { return true }
        for i in 0..<rt.pointee.count where rt.pointee.kthreads[i].runq.approximateCount > 1 { return true }
        return false
    }

    /// No work: spin briefly (running poll hooks), then sleep in the kernel on the
    /// doorbell, the poll-hook fds and the next timer.
    static func idle(_ k: KT) {
        let rt = k.pointee.runtime
        rt.pointee.spinning.add(1, ordering: .relaxed)
        let until = cj_monotonic_ns() &+ rt.pointee.spinNanoseconds
        var found = false
        repeat {
            if runHooks(k) > 0 || workVisible(k) { found = true; break }
            if rt.pointee.stopping.load(ordering: .relaxed) || rt.pointee.quiesceRequested.load(ordering: .relaxed) { break }
            cj_cpu_relax()
        } while cj_monotonic_ns() < until
        rt.pointee.spinning.subtract(1, ordering: .relaxed)
        if found { return }

        k.pointee.sleeping.store(true, ordering: .sequentiallyConsistent)
        let sleepers = rt.pointee.sleepers.add(1, ordering: .sequentiallyConsistent).newValue
        defer { rt.pointee.sleepers.subtract(1, ordering: .sequentiallyConsistent) }
        if workVisible(k) || rt.pointee.quiesceRequested.load(ordering: .sequentiallyConsistent)
            || (rt.pointee.stopping.load(ordering: .sequentiallyConsistent) && rt.pointee.live.load(ordering: .sequentiallyConsistent) == 0) {
            k.pointee.sleeping.store(false, ordering: .sequentiallyConsistent)
            return
        }
        if rt.pointee.stopping.load(ordering: .sequentiallyConsistent), sleepers == rt.pointee.count {
            checkShutdownDeadlock(rt)
        }
        var timeout = timespec()
        var timeoutPointer: UnsafeMutablePointer<timespec>? = nil
        var earliest = k.pointee.earliestTimer.load(ordering: .acquiring)
        // Memory that ended uthreads left: returned at an idle moment a while later.
        if k.pointee.returnMemoryAt == .max && hasMemoryToReturn(k) {
            k.pointee.returnMemoryAt = cj_monotonic_ns() &+ returnMemoryAfter
        }
        let returnAt = k.pointee.returnMemoryAt
        earliest = min(earliest, returnAt)
        var woken: Int32 = 0
        withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: Int(idleEventCapacity)) { buffer in
        let events = buffer.baseAddress!
        withUnsafeMutablePointer(to: &timeout) { tp in
            if earliest != .max {
                let delta = max(0, earliest - cj_monotonic_ns())
                tp.pointee.tv_sec = Int(delta / 1_000_000_000)
                tp.pointee.tv_nsec = Int(delta % 1_000_000_000)
                timeoutPointer = tp
            }
            k.pointee.sleeps &+= 1
            // Asleep counts as stopped for a stopper (Quiesce.swift), which then need not
            // wake this kthread; awake again, it checks for a stopper before anything else.
            rt.pointee.quiesceAsleep.add(1, ordering: .sequentiallyConsistent)
            woken = epoll_pwait2(k.pointee.epfd, events, idleEventCapacity, timeoutPointer, nil)
            rt.pointee.quiesceAsleep.subtract(1, ordering: .sequentiallyConsistent)
        }
        }
        if rt.pointee.quiesceRequested.load(ordering: .sequentiallyConsistent) { waitWhileQuiesced(rt) }
        k.pointee.sleeping.store(false, ordering: .sequentiallyConsistent)
        Host.drain(k.pointee.doorbell)
        if woken == 0, returnAt != .max, cj_monotonic_ns() >= returnAt, !workVisible(k) {
            k.pointee.returnMemoryAt = .max
            returnMemory(k)
        }
    }

    /// Whether stacks beyond what an idle runtime keeps are cached, or uthreads ended
    /// since memory was last returned.
    static func hasMemoryToReturn(_ k: KT) -> Bool {
        let rt = k.pointee.runtime
        return k.pointee.stackCache.count > stackCacheIdleKeep || rt.pointee.poolSize.load(ordering: .relaxed) > stackPoolIdleKeep
            || rt.pointee.endedSinceReturn.load(ordering: .relaxed)
    }

    /// After `returnMemoryAfter` idle: unmaps the stacks this kthread's cache and the
    /// runtime's pool hold beyond what they keep, and gives free malloc memory back
    /// (malloc_trim: glibc keeps freed chunks, large ones included once its mmap
    /// threshold has risen, resident in its arenas otherwise).
    static func returnMemory(_ k: KT) {
        let rt = k.pointee.runtime
        let g = rt.pointee.geometry
        while k.pointee.stackCache.count > stackCacheIdleKeep, let t = k.pointee.stackCache.popLast() { g.unmap(t) }
        // The stacks kept lose their pages (only this kthread takes from its cache).
        for t in k.pointee.stackCache { g.discardPages(t) }
        // The pool's: taken out while their pages go (another kthread could take one).
        rt.pointee.poolLock.lock()
        let pooled = rt.pointee.pool
        rt.pointee.pool = []
        rt.pointee.poolSize.store(0, ordering: .relaxed)
        rt.pointee.poolLock.unlock()
        let kept = pooled.prefix(stackPoolIdleKeep)
        for t in pooled.dropFirst(stackPoolIdleKeep) { g.unmap(t) }
        for t in kept { g.discardPages(t) }
        rt.pointee.poolLock.lock()
        rt.pointee.pool.append(contentsOf: kept)
        rt.pointee.poolSize.store(rt.pointee.pool.count, ordering: .relaxed)
        rt.pointee.poolLock.unlock()
        // Every returning kthread trims malloc's arenas (at most once a second each): a
        // connection's memory may be freed after another kthread's return.
        rt.pointee.endedSinceReturn.store(false, ordering: .relaxed)
        _ = cj_malloc_trim()
    }

    /// Called by the last kthread to fall asleep while the runtime shuts down: if nothing
    /// can ever run again (no timer, no queued uthread, no poll hook with an fd), the
    /// parked uthreads are stuck for good.
    static func checkShutdownDeadlock(_ rt: RT) {
        let live = rt.pointee.live.load(ordering: .sequentiallyConsistent)
        if live == 0 || rt.pointee.globalCount.load(ordering: .sequentiallyConsistent) > 0 { return }
        for i in 0..<rt.pointee.count {
            let k = rt.pointee.kthreads + i
            if k.pointee.earliestTimer.load(ordering: .sequentiallyConsistent) != .max
                || k.pointee.runq.approximateCount > 0
                || k.pointee.inboxCount.load(ordering: .sequentiallyConsistent) > 0
                || k.pointee.fdHooks.load(ordering: .sequentiallyConsistent) > 0 { return }
        }
        misuse("UThreads: Runtime.shutdown() is waiting for \(live) uthread(s) parked with nothing left to wake them (no timer, no runnable uthread, no poll hook): a lost wake-up or a deadlock in the program")
    }
}
