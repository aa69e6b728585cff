// ForkCalls.swift: new processes: fork, vfork and clone/clone3 without CLONE_VM (or with
// CLONE_VM|CLONE_VFORK, as posix_spawn uses) as a host fork of the whole instance. The
// parent first moves what processes share into the host kernel (pipes, socket pairs,
// file offsets), then forks; in the child only the forking kthread survives: it builds
// a new runtime (LibOS's ProcessHost), resumes the forking application thread on it
// with rax = 0, and becomes the child's signal thread.
import CJunction
import FileSystem
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// What LibOS gives SyscallEmu so that a forked child can run: the pieces of an instance
/// that live outside the process object.
public struct ProcessHost: Sendable {
    /// Starts a runtime like the instance's (kthreads with interception on) and returns
    /// it with the kick for its kthreads; nil if it cannot.
    public var makeRuntime: @Sendable () -> (Runtime, @Sendable () -> Void)?
    /// Runs the signal thread's loop (signals from the host into `process`): never returns.
    public var signalLoop: @Sendable (LinuxProcess) -> Never

    public init(makeRuntime: @escaping @Sendable () -> (Runtime, @Sendable () -> Void)?,
                signalLoop: @escaping @Sendable (LinuxProcess) -> Never) {
        self.makeRuntime = makeRuntime
        self.signalLoop = signalLoop
    }
}

/// A socket backend with state to re-establish in a forked child (NetStack's: the
/// child attaches its own device queue and stack, and takes over its listeners).
public protocol ForkAwareSocketProvider: AnyObject {
    /// In the parent, after a fork of `child` succeeded.
    func parentDidFork(child: pid_t)
    /// In the child, on its new runtime, before the program resumes (one thread runs).
    /// Returns a line for the log (what the child's sockets lost), if any.
    func childAfterFork(runtime: Runtime, files: [OpenFile]) -> String?
}

extension LinuxProcess {
    /// Set by LibOS before the program starts; without it fork fails with ENOSYS.
    public nonisolated(unsafe) static var host: ProcessHost?
    /// Held by the signal thread while it hands a host signal to the process, and by a
    /// fork around the host fork, so the child never inherits a delivery half done.
    public static let hostSignalGate = SpinLock()
    /// Whether this process forked or was forked (shared futexes then poll).
    nonisolated(unsafe) static var multiProcess = false
}

extension Handlers {
    static let warnedUnsharedSocket = Atomic<Bool>(false)
    static let cloneVfork: UInt64 = 0x4000, cloneParent: UInt64 = 0x8000

    static func registerFork(_ d: Dispatcher) {
        registerWait(d)
        d.register(.fork) { f, p throws(LinuxError) in
            try fork(f, p, flags: UInt64(SIGCHLD), stack: 0, parentTID: 0, childTID: 0, tls: 0)
        }
        d.register(.vfork) { f, p throws(LinuxError) in
            try fork(f, p, flags: cloneVM | cloneVfork | UInt64(SIGCHLD), stack: 0, parentTID: 0, childTID: 0, tls: 0)
        }
    }

    /// fork, vfork, and clone without the thread flags.
    static func fork(_ f: SyscallFrame, _ p: LinuxProcess, flags: UInt64, stack: UInt64, parentTID: UInt64,
                     childTID: UInt64, tls: UInt64) throws(LinuxError) -> Int64 {
        // Threads share everything; a process shares nothing of this list (CLONE_VM only
        // with CLONE_VFORK, where the parent sleeps until the child execs or exits).
        let shared = cloneFS | cloneFiles | cloneSighand | cloneThread | cloneParent
        guard flags & shared == 0 else { throw LinuxError(.EINVAL) }
        if flags & cloneVM != 0 && flags & cloneVfork == 0 { throw LinuxError(.EINVAL) }
        guard let t = AppThread.current, let host = LinuxProcess.host else { throw LinuxError(.ENOSYS) }
        let vfork = flags & cloneVfork != 0

        // The child's frame: the caller's registers, rax = 0, the new stack and TLS.
        cj_fixup_resume(f.raw)
        let size = MemoryLayout<cj_syscall_frame>.size + Int(CJ_XSAVE_AREA)
        guard let block = malloc(size) else { throw LinuxError(.ENOMEM) }
        block.copyMemory(from: UnsafeRawPointer(f.raw), byteCount: size)
        let frame = block.assumingMemoryBound(to: cj_syscall_frame.self)
        frame.pointee.rax = 0
        if stack != 0 { frame.pointee.rsp = stack }
        if flags & cloneSettls != 0 { frame.pointee.fs_base = tls }

        // vfork: the parent waits for the child to close this pipe's write end (exec, exit).
        var release: [Int32] = [-1, -1]
        if vfork && release.withUnsafeMutableBufferPointer({
            cj_host_syscall(293, UInt64(UInt(bitPattern: $0.baseAddress)), UInt64(O_CLOEXEC | O_NONBLOCK), 0, 0, 0, 0)
        }) != 0 { free(block); throw LinuxError(.EAGAIN) }
        if vfork { HostWatcher.shared.watch(release[0]) }

        // The world stops first: every other kthread waits at a safe point (holding no
        // libOS lock), so the child's copy of every lock is free. The signal thread is
        // not a kthread: the signals lock, which it takes, is held across the fork.
        guard let runtime = Runtime.current else { free(block); throw LinuxError(.EAGAIN) }
        var unsharedSocket: Int32?
        let unix = try? p.sockets.provider(for: SocketConstants.AF_UNIX) as? UnixSocketProvider
        let unixHosts = unix?.promotionHosts(for: p.descriptors.snapshot().map(\.1),
                                             inetHosts: try? p.sockets.provider(for: SocketConstants.AF_INET) as? HostSocketProvider)
        let ((pid, e), _) = runtime.withWorldStopped(nudge: { p.signals.kick?() }) { () -> (pid_t, Int32) in
            // What processes share moves into the host kernel, where both will see it.
            // Host sockets are the host's already; connected AF_UNIX pairs move into host
            // socketpairs (UnixPromotion.swift). Other AF_UNIX sockets and NetStack's are
            // not moved: each process keeps a copy (logged below).
            // (No local holds the open files across the fork: the child never returns from
            // this closure, and a reference kept here would keep every file open in it.)
            if let unix, let unixHosts, unix.promotePairs(in: p.descriptors.snapshot().map(\.1), hosts: unixHosts) {
                unsharedSocket = SocketConstants.AF_UNIX
            }
            for (_, file) in p.descriptors.snapshot() {
                switch file.handle {
                case let r as PipeReadEnd: r.pipe.promoteToHost()
                case let w as PipeWriteEnd: w.pipe.promoteToHost()
                case is HostSocket, is UnixSocket: break
                // NetStack's sockets: the child re-establishes them (ForkAwareSocketProvider).
                case let s as any SocketHandle where s.family != SocketConstants.AF_INET && s.family != SocketConstants.AF_INET6
                                                     && s.family != SocketConstants.AF_NETLINK:
                    unsharedSocket = unsharedSocket ?? s.family
                default: file.shareOffsetThroughHost()
                }
            }
            cj_fork_prepare()
            // Not while the signal thread delivers (it holds locks the child would keep
            // locked forever: a kill in the child hung on the signals' observers).
            let pid = LinuxProcess.hostSignalGate.withLock { p.signals.lock.withLock { Glibc.fork() } }
            if pid == 0 {
                cj_fork_child()
                if vfork { close(release[0]) }
                forkChild(t, p, host: host, frame: block, vforkRelease: release[1], childTID: flags & cloneChildSettid != 0 ? childTID : 0,
                          sharedStack: flags & cloneVM != 0 ? f.raw.pointee.rsp : 0)
            }
            let e = errno
            cj_fork_parent()
            return (pid, e)
        }
        free(block)
        if vfork { close(release[1]) }
        guard pid > 0 else {
            if vfork { HostWatcher.shared.unwatch(release[0]); close(release[0]) }
            throw LinuxError(Errno(rawValue: e == ENOMEM ? ENOMEM : EAGAIN))
        }
        Dispatcher.tagLines = Dispatcher.active?.trace == true
        LinuxProcess.multiProcess = true
        (try? p.sockets.provider(for: SocketConstants.AF_INET) as? ForkAwareSocketProvider)?.parentDidFork(child: pid)
        if let family = unsharedSocket, !Self.warnedUnsharedSocket.exchange(true, ordering: .relaxed) {
            Dispatcher.log("junction: fork with an open \(family == SocketConstants.AF_UNIX ? "AF_UNIX" : "family \(family)") socket of the instance: parent and child each keep their own copy of it (such sockets are not shared across processes yet)")
        }
        if flags & cloneParentSettid != 0 { try? UserMemory.store(Int32(pid), at: parentTID) }
        if vfork {
            // Until the child execs or exits (its end closes; a signal does not end the wait).
            var byte: UInt8 = 0
            while true {
                let n = read(release[0], &byte, 1)
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { break }
                do { try HostWatcher.shared.wait(release[0], for: Int16(POLLIN)) } catch { continue }
            }
            HostWatcher.shared.unwatch(release[0])
            close(release[0])
        }
        return Int64(pid)
    }

    /// The child's side: runs on the only thread the host fork left, which was a kthread
    /// of the parent's runtime and becomes this process's signal thread.
    static func forkChild(_ t: AppThread, _ p: LinuxProcess, host: ProcessHost, frame: UnsafeMutableRawPointer,
                          vforkRelease: Int32, childTID: UInt64, sharedStack: UInt64) -> Never {
        let parent = p.pid
        let pid = getpid()
        // No longer a kthread: interception off, its %gs area and altstack gone.
        _ = cj_sud_disable()
        cj_area_uninstall()
        p.pid = pid
        HostReactor.forkEpoch.add(1, ordering: .relaxed)  // the parent's reactors are not this process's
        p.signals.afterFork(keeping: t, pid: pid)
        p.compat.timers.forgetAll()  // POSIX timers are not inherited (the host's are the parent's)
        if p.vforkRelease >= 0 { close(p.vforkRelease) }  // a vfork child's child: not its to release
        p.vforkRelease = vforkRelease
        p.vforkShared = sharedStack != 0 ? (parent, sharedStack) : nil
        p.deathSignal = 0
        // The parent's futex waiters (other threads) do not exist here.
        futexTable = WaitTable(bucketCount: 1024)
        childEvents.initialize(to: 0)
        Dispatcher.tagLines = Dispatcher.active?.trace == true
        LinuxProcess.multiProcess = true
        if childTID != 0 { try? UserMemory.store(Int32(pid), at: childTID) }
        guard let made = host.makeRuntime() else {
            Dispatcher.log("junction: the child of fork could not start its runtime")
            _exit(127)
        }
        let (runtime, kick) = made
        p.signals.kick = kick
        HostIO.afterFork(runtime: runtime)
        HostWatcher.shared.afterFork(runtime: runtime)
        if let hosts = try? p.sockets.provider(for: SocketConstants.AF_INET) as? HostSocketProvider {
            hosts.afterFork(runtime: runtime, files: p.descriptors.snapshot().map(\.1))
        }
        if let unix = try? p.sockets.provider(for: SocketConstants.AF_UNIX) as? UnixSocketProvider {
            unix.afterFork(runtime: runtime, files: p.descriptors.snapshot().map(\.1))
        }
        if let net = try? p.sockets.provider(for: SocketConstants.AF_INET) as? ForkAwareSocketProvider {
            if let line = net.childAfterFork(runtime: runtime, files: p.descriptors.snapshot().map(\.1)) { Dispatcher.log(line) }
        }
        let start = UnsafeSendableBlock(frame)
        runtime.spawn {
            AppThread.attach(t)
            p.signals.lock.withLock { t.uthread = UThread.current }
            cj_resume_application(start.pointer)
        }
        host.signalLoop(p)
    }

    // Tunables: how much of the parent's stack, above its stack pointer at the clone, a
    // CLONE_VM child that exits without exec copies back.
    static let sharedStackBytes = 32 * 1024

    /// exit_group. A CLONE_VM|CLONE_VFORK child (posix_spawn's) that exits before exec
    /// shares memory with its parent in Linux and reports its failure there (glibc
    /// stores errno in the parent's frame): the parent's stack above its stack pointer
    /// at the clone gets this process's copy of it (process_vm_writev; the parent sleeps
    /// until this process is gone). The release pipe closes with the process.
    static func beforeExit(_ p: LinuxProcess) {
        guard p.vforkRelease >= 0, let shared = p.vforkShared else { return }
        let (parent, sp) = shared
        // Only the application's memory: the stack's range in the address-space book
        // (libOS memory may lie next to it and must stay the parent's).
        guard let range = p.addressSpace.range(containing: sp) else { return }
        let limit = min(range.upperBound, sp + UInt64(sharedStackBytes))
        var pageEnd = min((sp + 4096) & ~4095, limit)
        var start = sp
        while start < limit {
            var local = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(start)), iov_len: Int(pageEnd - start))
            var remote = local
            let r = withUnsafeMutablePointer(to: &local) { l in
                withUnsafeMutablePointer(to: &remote) { rm in
                    cj_host_syscall(311, UInt64(parent), UInt64(UInt(bitPattern: l)), 1, UInt64(UInt(bitPattern: rm)), 1, 0)
                }
            }
            if r <= 0 { break }
            start = pageEnd
            pageEnd = min(pageEnd + 4096, limit)
        }
    }

    /// execve past its point of no return: a vfork parent may go on.
    static func releaseVforkParent(_ p: LinuxProcess) {
        if p.vforkRelease >= 0 {
            close(p.vforkRelease)
            p.vforkRelease = -1
        }
        p.vforkShared = nil
    }
}
