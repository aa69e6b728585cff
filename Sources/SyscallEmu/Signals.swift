// Signals.swift: the signal state of a process and its threads, as Linux keeps it:
// dispositions per process, blocked masks and alternate stacks per thread, pending sets
// per thread (tkill, tgkill, faults) and per process (kill, signals from outside), and
// the choice of which thread takes a process-directed signal. Delivery onto the
// application's stack is in SignalCalls.swift.
import CJunction
import FileSystem
import Synchronization
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A disposition as rt_sigaction sets it (struct kernel_sigaction).
public struct SignalAction: Sendable, Equatable {
    /// SIG_DFL (0), SIG_IGN (1) or the handler's address.
    public var handler: UInt64
    public var flags: UInt64
    public var restorer: UInt64
    public var mask: UInt64

    public static let defaultAction = SignalAction(handler: 0, flags: 0, restorer: 0, mask: 0)

    static let onStack: UInt64 = 0x0800_0000, restart: UInt64 = 0x1000_0000
    static let noDefer: UInt64 = 0x4000_0000, resetHand: UInt64 = 0x8000_0000
}

/// What SIG_DFL does with a signal (signal(7)).
enum DefaultAction {
    case terminate, core, ignore, stop, resume

    init(_ sig: Int32) {
        switch sig {
        case SIGCHLD, SIGURG, SIGWINCH: self = .ignore
        case SIGCONT: self = .resume
        case SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: self = .stop
        case SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS: self = .core
        default: self = .terminate  // the rest, real-time signals included
        }
    }
}

/// The facts a handler finds in its siginfo_t.
struct SignalInfo {
    var code: Int32 = 0
    var pid: Int32 = 0
    var uid: UInt32 = 0
    /// SIGCHLD: si_status (the exit status or the signal).
    var status: Int32 = 0
    /// Faults: the address (si_addr); also err and trapno for the sigcontext.
    var address: UInt64 = 0
    var error: UInt64 = 0
    var trapNumber: UInt64 = 0
    /// si_value of a timer's signal (si_timerid and si_overrun go in `pid` and `uid`).
    var value: UInt64 = 0

    static let user: Int32 = 0, kernel: Int32 = 0x80, tkill: Int32 = -6
}

/// Signal numbers as bits: bit N-1 for signal N.
enum SignalSet {
    @inline(__always) static func bit(_ sig: Int32) -> UInt64 { UInt64(1) << UInt64(sig - 1) }
    static let unblockable = bit(SIGKILL) | bit(SIGSTOP)
    /// Synchronous faults go out before other pending signals, as in Linux.
    static let synchronous = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGTRAP) | bit(SIGFPE) | bit(SIGSYS)
}

/// An alternate signal stack (stack_t).
struct AltStack {
    var base: UInt64 = 0
    var size: UInt64 = 0
    /// SS_DISABLE (2) when there is none; SS_AUTODISARM (1 << 31) may be set.
    var flags: Int32 = 2

    static let onStack: Int32 = 1, disable: Int32 = 2, autoDisarm = Int32(bitPattern: 0x8000_0000)

    var enabled: Bool { flags & Self.disable == 0 }
    func contains(_ sp: UInt64) -> Bool { enabled && sp > base && sp - base <= size }
}

/// The signal state of one process. One lock guards it and the signal fields of its
/// threads; the per-call check is a single relaxed load of `pendingCount`.
public final class ProcessSignals: @unchecked Sendable {
    let lock = SpinLock()
    @exclusivity(unchecked) private var actions = [SignalAction](repeating: .defaultAction, count: 65)
    @exclusivity(unchecked) private var pending: UInt64 = 0
    @exclusivity(unchecked) private var info: [Int32: SignalInfo] = [:]
    /// Application threads in creation order (the main thread first). An ending thread
    /// clears its slot (`AppThread.signalSlot`) in O(1) and leaves a hole; when holes
    /// outnumber the threads the array is compacted (in order), so creating and ending
    /// N threads costs O(N) in all, not O(N²) as a search for the ending thread did.
    @exclusivity(unchecked) private var slots: [AppThread?] = []
    @exclusivity(unchecked) private var liveThreads = 0
    /// Pending signals in the process and all its threads.
    let pendingCount = Atomic<Int>(0)
    /// Told whenever a signal becomes pending (signalfd's readiness).
    let pendingObservers = ReadinessObservers()
    private var pid: Int32

    /// Makes kthreads that are running application code enter the libOS, so that a
    /// signal for a thread that makes no system calls is still delivered. Set by the
    /// instance; nil leaves delivery to the next call.
    @exclusivity(unchecked) public nonisolated(unsafe) var kick: (@Sendable () -> Void)?

    init(pid: Int32) { self.pid = pid }

    // MARK: dispositions

    func action(_ sig: Int32) -> SignalAction { lock.withLock { actions[Int(sig)] } }

    /// rt_sigaction: records `new` (if given) and returns the previous disposition.
    /// Making a signal ignored discards its pending instances, as Linux does.
    func exchangeAction(_ sig: Int32, _ new: SignalAction?) -> SignalAction {
        lock.withLock {
            let old = actions[Int(sig)]
            if let new {
                actions[Int(sig)] = new
                if isIgnored(sig, new) { discard(sig) }
            }
            return old
        }
    }

    private func isIgnored(_ sig: Int32, _ a: SignalAction) -> Bool {
        a.handler == 1 || (a.handler == 0 && [.ignore, .resume].contains(DefaultAction(sig)))
    }

    private func discard(_ sig: Int32) {
        let bit = SignalSet.bit(sig)
        if pending & bit != 0 { pending &= ~bit; info[sig] = nil; pendingCount.subtract(1, ordering: .relaxed) }
        for case let t? in slots where t.pending & bit != 0 {
            t.pending &= ~bit
            t.pendingInfo[sig] = nil
            pendingCount.subtract(1, ordering: .relaxed)
        }
    }

    // MARK: threads

    /// In a forked child: `keeper` (the thread that forked) is the only thread, with the
    /// child's pid as its tid, and nothing is pending (Linux clears a child's pending
    /// signals; dispositions and the mask are inherited).
    func afterFork(keeping keeper: AppThread, pid newPID: Int32) {
        lock.withLock {
            pid = newPID
            for case let t? in slots where t !== keeper { t.signalSlot = -1 }
            slots = [keeper]
            keeper.signalSlot = 0
            liveThreads = 1
            keeper.tid = newPID
            keeper.pending = 0
            keeper.pendingInfo = [:]
            keeper.exitRequested = false
            pending = 0
            info = [:]
            pendingCount.store(0, ordering: .relaxed)
        }
    }

    /// execve: asks every thread but `keeper` to end (each is interrupted and kicked;
    /// it ends as it leaves the libOS). Returns how many were asked.
    func requestExit(allBut keeper: AppThread) -> Int {
        // Interrupted under the lock: a thread that ends unregisters under it too, so its
        // uthread reference is valid here.
        let count = lock.withLock { () -> Int in
            var o: [AppThread] = []
            for case let t? in slots where t !== keeper && !t.exitRequested { o.append(t) }
            for t in o {
                t.exitRequested = true
                pendingCount.add(1, ordering: .relaxed)
                t.uthread?.interrupt()
            }
            return o.count
        }
        if count > 0 { kick?() }
        return count
    }

    func takeExitRequest(_ t: AppThread) -> Bool {
        lock.withLock {
            guard t.exitRequested else { return false }
            t.exitRequested = false
            pendingCount.subtract(1, ordering: .relaxed)
            return true
        }
    }

    /// execve: handlers go back to SIG_DFL (ignored signals stay ignored); the alternate
    /// stack and any temporary mask of `t` go away; pending signals and the mask stay.
    func resetForExec(_ t: AppThread) {
        lock.withLock {
            for i in 1...64 where actions[i].handler > 1 { actions[i] = .defaultAction }
            t.altStack = AltStack()
            if let m = t.savedMask { t.blocked = m; t.savedMask = nil }
        }
    }

    /// For /proc/self/status.
    var threadCount: Int { lock.withLock { liveThreads } }
    var pendingMask: UInt64 { lock.withLock { slots.reduce(pending) { $0 | ($1?.pending ?? 0) } } }
    func blockedMask(of thread: AppThread) -> UInt64 { lock.withLock { thread.blocked } }
    var ignoredMask: UInt64 {
        lock.withLock { (1...64).reduce(UInt64(0)) { actions[$1].handler == 1 ? $0 | SignalSet.bit(Int32($1)) : $0 } }
    }
    var caughtMask: UInt64 {
        lock.withLock { (1...64).reduce(UInt64(0)) { actions[$1].handler > 1 ? $0 | SignalSet.bit(Int32($1)) : $0 } }
    }

    func register(_ t: AppThread) {
        lock.withLock {
            t.signalSlot = slots.count
            slots.append(t)
            liveThreads += 1
        }
    }

    /// A thread ends: its pending signals go with it, and it can no longer be woken.
    func unregister(_ t: AppThread) {
        lock.withLock {
            let i = t.signalSlot
            if i >= 0, i < slots.count, slots[i] === t {
                slots[i] = nil
                liveThreads -= 1
                t.signalSlot = -1
                // Trailing holes go at once; inner ones when they outnumber the threads.
                while let last = slots.last, last == nil { slots.removeLast() }
                if slots.count > 64 && slots.count > 2 * liveThreads { compact() }
            }
            let gone = t.pending.nonzeroBitCount + (t.exitRequested ? 1 : 0)
            if gone > 0 { pendingCount.subtract(gone, ordering: .relaxed) }
            t.pending = 0
            t.pendingInfo = [:]
            t.exitRequested = false
            t.uthread = nil
        }
    }
    func thread(tid: Int32) -> AppThread? {
        lock.withLock { () -> AppThread? in
            for case let t? in slots where t.tid == tid { return t }
            return nil
        }
    }

    /// Drops the holes, keeping creation order (under the lock).
    private func compact() {
        var live: [AppThread?] = []
        live.reserveCapacity(liveThreads)
        for case let t? in slots {
            t.signalSlot = live.count
            live.append(t)
        }
        slots = live
    }

    /// rt_sigprocmask on `t`: applies `how` (SIG_BLOCK 0, SIG_UNBLOCK 1, SIG_SETMASK 2)
    /// and returns the old mask. SIGKILL and SIGSTOP stay unblocked.
    func changeMask(of t: AppThread, how: UInt64, set: UInt64?) throws(LinuxError) -> UInt64 {
        try lock.withLock { () throws(LinuxError) -> UInt64 in
            let old = t.blocked
            if let set {
                switch how {
                case 0: t.blocked |= set
                case 1: t.blocked &= ~set
                case 2: t.blocked = set
                default: throw LinuxError(.EINVAL)
                }
                t.blocked &= ~SignalSet.unblockable
            }
            return old
        }
    }

    /// Replaces `t`'s mask for the length of a wait (rt_sigsuspend, ppoll, pselect);
    /// the old mask comes back with `endTemporaryMask`, or through the handler's frame.
    func beginTemporaryMask(of t: AppThread, _ mask: UInt64) {
        lock.withLock {
            if t.savedMask == nil { t.savedMask = t.blocked }
            t.blocked = mask & ~SignalSet.unblockable
        }
    }

    func endTemporaryMask(of t: AppThread) {
        lock.withLock {
            if let m = t.savedMask { t.blocked = m; t.savedMask = nil }
        }
    }

    /// Signals pending for `t` (its own and the process's), blocked or not.
    func pendingSet(for t: AppThread) -> UInt64 { lock.withLock { t.pending | pending } }

    // MARK: generation

    /// Sends `sig` to thread `target`, or to the process when nil. A fatal default action
    /// ends the process here; a handled signal is left pending for a thread that does
    /// not block it, and that thread is interrupted if it waits and kicked if it runs.
    func send(_ sig: Int32, _ si: SignalInfo, to target: AppThread?) {
        guard sig >= 1, sig <= 64 else { return }
        let bit = SignalSet.bit(sig)
        enum Outcome { case none, wake(AppThread), fatal, stop }
        let outcome = lock.withLock { () -> Outcome in
            let a = actions[Int(sig)]
            let taker: AppThread?
            if let target {
                taker = target.blocked & bit == 0 ? target : nil
            } else {
                taker = slots.lazy.compactMap { $0 }.first { $0.blocked & bit == 0 }
            }
            // Ignored signals are discarded unless blocked (they may be unignored later).
            if isIgnored(sig, a) && taker != nil { return .none }
            if a.handler == 0, let taker, taker.awaited & bit == 0 {
                switch DefaultAction(sig) {
                case .terminate, .core: return .fatal
                case .stop: return .stop
                case .ignore, .resume: return .none
                }
            }
            if let target {
                if target.pending & bit == 0 { target.pending |= bit; pendingCount.add(1, ordering: .relaxed) }
                target.pendingInfo[sig] = si
            } else {
                if pending & bit == 0 { pending |= bit; pendingCount.add(1, ordering: .relaxed) }
                info[sig] = si
            }
            // Woken under the lock (see requestExit); not the calling thread itself.
            if let t = taker, t !== AppThread.current { t.uthread?.interrupt() }
            return taker.map { .wake($0) } ?? .none
        }
        pendingObservers.notify([.readable])
        switch outcome {
        case .none: break
        case .fatal: terminate(by: sig)
        case .stop: kill(getpid(), SIGSTOP)
        case .wake(let t):
            if t !== AppThread.current { kick?() }
        }
    }

    /// Ends the instance the way the signal would end a native process (status 128+N
    /// to a shell, a core dump where the host allows one).
    public func terminate(by sig: Int32) -> Never {
        signal(sig, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, sig)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        raise(sig)
        kill(getpid(), sig)
        _exit(128 + sig)
    }

    // MARK: delivery

    /// Whether `t` has a signal it does not block (a wait should end with EINTR).
    func hasDeliverable(for t: AppThread) -> Bool {
        pendingCount.load(ordering: .relaxed) != 0 && lock.withLock { (t.pending | pending) & ~t.blocked != 0 || t.exitRequested }
    }

    /// Takes the next signal `t` does not block, with its disposition.
    func take(for t: AppThread) -> (Int32, SignalInfo, SignalAction)? {
        lock.withLock { () -> (Int32, SignalInfo, SignalAction)? in
            let ready = (t.pending | pending) & ~t.blocked
            // Synchronous faults go first, then the lowest number.
            let first = ready & SignalSet.synchronous != 0 ? ready & SignalSet.synchronous : ready
            guard let (sig, si) = dequeue(first, from: t) else { return nil }
            return (sig, si, actions[Int(sig)])
        }
    }

    /// Takes a pending signal in `set` (rt_sigtimedwait), whether blocked or not.
    func take(in set: UInt64, for t: AppThread) -> (Int32, SignalInfo)? {
        lock.withLock { dequeue((t.pending | pending) & set, from: t) }
    }

    /// Removes the lowest signal of `candidates` from `t`'s pending set or the process's
    /// (lock held).
    private func dequeue(_ candidates: UInt64, from t: AppThread) -> (Int32, SignalInfo)? {
        guard candidates != 0 else { return nil }
        let sig = Int32(candidates.trailingZeroBitCount + 1)
        let bit = SignalSet.bit(sig)
        let si: SignalInfo
        if t.pending & bit != 0 {
            t.pending &= ~bit
            si = t.pendingInfo.removeValue(forKey: sig) ?? SignalInfo()
        } else {
            pending &= ~bit
            si = info.removeValue(forKey: sig) ?? SignalInfo()
        }
        pendingCount.subtract(1, ordering: .relaxed)
        return (sig, si)
    }

    /// Starts a handler on `t`: blocks the action's mask and (without SA_NODEFER) the
    /// signal itself, applies SA_RESETHAND, and returns the mask the frame restores.
    func beginHandler(on t: AppThread, _ sig: Int32, _ a: SignalAction) -> UInt64 {
        lock.withLock {
            let old = t.savedMask ?? t.blocked
            t.savedMask = nil
            t.blocked |= a.mask | (a.flags & SignalAction.noDefer != 0 ? 0 : SignalSet.bit(sig))
            t.blocked &= ~SignalSet.unblockable
            if a.flags & SignalAction.resetHand != 0 { actions[Int(sig)] = .defaultAction }
            return old
        }
    }

    /// rt_sigreturn: the mask the frame saved.
    func restoreMask(of t: AppThread, _ mask: UInt64) {
        lock.withLock { t.blocked = mask & ~SignalSet.unblockable }
    }
}

extension LinuxProcess {
    /// Creates the main application thread (tid = pid, the mask this process started
    /// with) and attaches it to the calling uthread, which is about to enter the program.
    public func attachMainThread(initialMask: UInt64) {
        let t = AppThread(tid: pid)
        t.blocked = initialMask & ~SignalSet.unblockable
        signals.register(t)
        AppThread.attach(t)
        signals.lock.withLock { t.uthread = UThread.current }
    }

    /// Starts with `sig` ignored (the parent ignored it, and exec keeps that).
    public func ignoreAtStart(_ sig: Int32) {
        _ = signals.exchangeAction(sig, SignalAction(handler: 1, flags: 0, restorer: 0, mask: 0))
    }

    /// A signal from outside the instance (the host delivered it to this process).
    public func deliverFromHost(_ sig: Int32, pid sender: Int32, uid: UInt32, code: Int32, status: Int32 = 0) {
        // kill(0) and kill(-pgrp) went to this process at once and to the group through the
        // host: the host's copy for this process is a duplicate.
        if code == SignalInfo.user && sender == pid && sig != SIGCHLD { return }
        if sig == SIGCHLD && !Handlers.childStateChanged(self, code: code) { return }
        signals.send(sig, SignalInfo(code: code, pid: sender, uid: uid, status: status), to: nil)
    }

    /// After a wait ended early (`UThread.takeInterrupt()`, an interrupted FileSystem
    /// call): throws `restart` when a signal is there for the calling thread, so the call
    /// ends (ERESTARTSYS becomes EINTR or a restart, as the handler's SA_RESTART says).
    /// Returns when the interruption was stale, for the caller to wait again.
    func checkInterrupted(_ restart: LinuxError) throws(LinuxError) {
        guard let t = AppThread.current else { return }
        if signals.hasDeliverable(for: t) { throw restart }
    }
}

extension LinuxError {
    /// Kernel-internal results that never reach the application: the call is restarted
    /// or ends with EINTR when the signal that interrupted it has been dealt with.
    static let restartSys = LinuxError(rawCode: 512)      // ERESTARTSYS: restart with SA_RESTART
    static let restartNoHandler = LinuxError(rawCode: 514) // ERESTARTNOHAND: EINTR if a handler ran

    static func isRestart(_ result: Int64) -> Bool { result <= -512 && result >= -516 }
}
