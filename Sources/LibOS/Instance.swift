// Instance.swift: one library-OS instance: a UThreads runtime whose kthreads intercept
// system calls, a VFS (host root through HostFS, /dev, extra mounts), the program loaded
// into this process, and its first thread entered on a uthread.
import CJunction
import FileSystem
import Loader
import NUMA
import NetSockets
import SyscallEmu
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// How system calls of application code reach the libOS.
public enum InterceptionMode: String, Sendable, CaseIterable {
    /// The best available: rewriting, which starts from the trap path.
    case auto
    /// Syscall User Dispatch: each call traps with SIGSYS.
    case trap
    /// Trap first, then rewrite `mov $N, %eax; syscall` sites into a jump to a stub that
    /// calls the libOS: later calls from that site cost a function call.
    case rewrite
    /// seccomp SECCOMP_RET_TRAP instead of Syscall User Dispatch as the trap (a filter
    /// that lets junction's own code through), then rewriting as with `rewrite`. `auto`
    /// falls back to it on kernels without Syscall User Dispatch.
    case seccomp
}

/// A file system to mount.
public enum MountSpec: Sendable, Equatable {
    case memfs(at: String)
    case host(source: String, at: String)

    /// Parses `memfs:/tmp` or `host:SRC:DST`.
    public init(parsing spec: String) throws(InstanceError) {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, parts.count) {
        case ("memfs", 2) where parts[1].hasPrefix("/"): self = .memfs(at: parts[1])
        case ("host", 3) where parts[1].hasPrefix("/") && parts[2].hasPrefix("/"): self = .host(source: parts[1], at: parts[2])
        default: throw .badMount(spec)
        }
    }
}

public struct InstanceConfiguration: Sendable {
    public var kthreads: Int?
    public var trace = false
    public var interception: InterceptionMode = .auto
    public var mounts: [MountSpec] = []
    /// Host directories whose AF_UNIX sockets bound inside the instance are also host
    /// sockets (--unix-export).
    public var unixExports: [String] = []
    /// `--net`: the instance's sockets on NetStack over this device (nil: the host's).
    public var network: NetworkOptions?
    /// `--numa-node`: kthreads, uthread stacks, io_uring rings and the --net device's
    /// packet pool on this node (nil: wherever the kernel puts them).
    public var numaNode: NUMANode?
    /// `--dns IP`: the name servers the instance's /etc/resolv.conf names (empty: the host's file).
    public var dnsServers: [String] = []
    /// The time slice after which a uthread running application code is preempted
    /// (nil: never, cooperative scheduling).
    public var quantum: Duration? = .milliseconds(10)

    public init() {}
}

/// Why an instance could not start.
public enum InstanceError: Error, CustomStringConvertible, Equatable {
    case badMount(String)
    case interceptionUnavailable(String)
    case commandNotFound(String)
    case load(LoadError)
    case fileSystem(String, Errno)
    case runtime(String)
    case network(String)

    public var description: String {
        switch self {
        case .badMount(let s): "bad --mount '\(s)': use memfs:/PATH or host:/SOURCE:/PATH"
        case .interceptionUnavailable(let why): "cannot intercept system calls: \(why)"
        case .commandNotFound(let c): "\(c): command not found"
        case .load(let e): e.description
        case let .fileSystem(what, e): "\(what): \(e)"
        case .runtime(let why): why
        case .network(let why): why
        }
    }

    /// The exit status a shell would use.
    public var exitStatus: Int32 {
        switch self {
        case .commandNotFound: 127
        case .load(let e): e.errno == .noSuchFileOrDirectory ? 127 : 126
        default: 1
        }
    }
}

/// The path with symlinks resolved, as the kernel names a process's executable.
func realPath(_ path: String) -> String {
    guard let r = realpath(path, nil) else { return path }
    defer { free(r) }
    return String(cString: r)
}

/// One library-OS instance in this process, in explicit phases:
///
/// 1. **configure**: ``init(configuration:)`` records what to build; nothing is touched.
/// 2. **start**: ``start()`` takes the process-wide state (signal dispositions and
///    masks, the umask), turns interception on, starts the runtime whose kthreads
///    intercept system calls, and builds the file systems and the `--net` stack.
/// 3. **run**: ``run(_:environment:)`` loads the program into this process, builds its
///    `LinuxProcess`, installs the `Dispatcher` and enters the program's first thread
///    on a uthread; it returns while the program runs.
/// 4. **wait**: ``wait()`` makes the calling thread the signal thread, which hands
///    signals from outside to the program, until the program ends the process
///    (`exit_group`); it never returns.
/// 5. **shut down**: ``shutDown(exitStatus:)`` undoes `start` when no program runs (a
///    failed `run`), or ends the program's process as `exit_group` would.
///
/// A process holds at most one instance: interception, the signal thread and the
/// program's address space are process-wide. A forked child keeps its parent's
/// instance and builds only a new runtime and signal thread (`ProcessRuntime`).
public final class Instance {
    /// Where an instance is in its life.
    public enum Phase: Sendable, Equatable {
        case configured, started, running, shutDown
    }

    public let configuration: InstanceConfiguration
    public private(set) var phase: Phase = .configured

    // What `start` took from the process, given back by `shutDown`.
    private var inheritedIgnored: [Int32] = []
    private var initialMask: UInt64 = 0
    private var hostMask: sigset_t?
    private var inheritedUmask: mode_t?

    // What `start` built.
    private var runtime: Runtime?
    private var kthreadTIDs: [Int32] = []
    private var kthreadAreas: [UInt] = []
    private var fs: FileSystemContext?
    /// /dev: the program's descriptors 0-2 are its standard streams.
    private var devices: DevFS?
    private var netProvider: NetStackSocketProvider?

    // What `run` built.
    /// The program's process (nil before ``run(_:environment:)``).
    public private(set) var process: LinuxProcess?
    /// The dispatcher installed for the program (its calls reach it through the
    /// interception's handler context).
    public private(set) var dispatcher: Dispatcher?

    /// Phase 1: an instance that will run with `configuration`.
    public init(configuration: InstanceConfiguration) {
        self.configuration = configuration
    }

    /// Phase 2: interception, the runtime, the file systems and the network.
    public func start() throws(InstanceError) {
        precondition(phase == .configured, "Instance.start() in phase \(phase)")
        // Signals the parent ignored (read before junction installs any handler).
        // (The raw call: glibc's sigaction refuses 32 and 33, which it keeps for itself.)
        inheritedIgnored = (Int32(1)...64).filter { sig in
            guard sig != SIGKILL, sig != SIGSTOP else { return false }
            var old = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // struct kernel_sigaction
            let r = withUnsafeMutablePointer(to: &old) {
                cj_host_syscall(Int64(SyscallNumber.rt_sigaction.rawValue), UInt64(sig), 0, UInt64(UInt(bitPattern: $0)), 8, 0, 0)
            }
            return r == 0 && old.0 == 1  // SIG_IGN
        }
        let mode = configuration.interception
        cj_set_rewriting(mode != .trap)
        // Faults in application code must end the process as they would natively: the
        // Swift runtime's crash backtracer would run on the application's stack and TLS.
        // SIGCHLD too: the children of fork are this process's, and an ignored SIGCHLD
        // would have the host reap them (the application's disposition is emulated).
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGCHLD] { signal(sig, SIG_DFL) }
        let rc = cj_interception_init()
        if rc != 0 { throw .interceptionUnavailable("SIGSYS handler: \(Errno(rawValue: -rc))") }

        // The program starts with the signal mask this process was started with.
        var initial = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &initial)
        hostMask = initial
        for sig in 1...64 where sigismember(&initial, Int32(sig)) == 1 { initialMask |= 1 << UInt64(sig - 1) }
        // Signals from outside are taken by this thread (wait()) and handed to the
        // application; the kthreads, created next, inherit the blocked set. Faults,
        // SIGSYS and the kick stay with the kthreads; glibc's 32 and 33 are the host's.
        var forwarded = sigset_t()
        sigemptyset(&forwarded)
        for sig in Int32(1)...64 where ![SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, 32, 33,
                                          CJ_KICK_SIGNAL].contains(sig) {
            sigaddset(&forwarded, sig)
        }
        pthread_sigmask(SIG_BLOCK, &forwarded, nil)
        // Whatever the parent blocked, the kthreads must take SIGSYS, faults and the kick.
        var needed = sigset_t()
        sigemptyset(&needed)
        for sig in [SIGSYS, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, CJ_KICK_SIGNAL] { sigaddset(&needed, sig) }
        pthread_sigmask(SIG_UNBLOCK, &needed, nil)

        // Runtime whose kthreads turn on Syscall User Dispatch as they start.
        let (runtime, tids, areas, sudError) = try ProcessRuntime.start(kthreads: configuration.kthreads, mode: mode, numaNode: configuration.numaNode)
        self.runtime = runtime
        kthreadTIDs = tids
        kthreadAreas = areas
        phase = .started
        var useSeccomp = mode == .seccomp
        if sudError == EINVAL && mode == .auto {
            // No Syscall User Dispatch here: trap through seccomp instead.
            useSeccomp = true
        } else if sudError != 0 {
            let why = sudError == EINVAL ? "this kernel has no Syscall User Dispatch (Linux 5.11+ with CONFIG_GENERIC_ENTRY)"
                : "prctl(PR_SET_SYSCALL_USER_DISPATCH): \(Errno(rawValue: sudError))"
            throw .interceptionUnavailable(why)
        }
        let forwarding = cj_install_signal_forwarding(CJ_KICK_SIGNAL)
        if forwarding != 0 { throw .runtime("installing the fault handlers: \(Errno(rawValue: -forwarding))") }
        // Fault signals sent from outside reach a kthread's fault handler, which passes
        // them here: this thread (not the kthreads, created already) blocks and waits for them.
        var faults = sigset_t()
        sigemptyset(&faults)
        for sig in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP] { sigaddset(&faults, sig); sigaddset(&forwarded, sig) }
        pthread_sigmask(SIG_BLOCK, &faults, nil)
        cj_set_signal_thread(cj_gettid())
        if useSeccomp {
            let rc = cj_seccomp_trap_outside_host()
            if rc != 0 {
                throw .interceptionUnavailable("seccomp filter: \(Errno(rawValue: -rc))"
                    + (rc == -EACCES ? " (needs no_new_privs or CAP_SYS_ADMIN)" : ""))
            }
        }

        // The emulated umask starts as the one inherited; the host process's becomes 0 so
        // that HostFS creates files with exactly the mode the libOS computed.
        let inheritedUmask = umask(0)
        self.inheritedUmask = inheritedUmask

        // --net: the device's interface and the in-stack loopback, polled by the runtime.
        netProvider = try configuration.network.map { n throws(InstanceError) in try NetworkSetup.start(n, on: runtime) }
        (fs, devices) = try Self.fileSystems(configuration, runtime: runtime, umask: inheritedUmask)
    }

    /// File systems: the host root through io_uring, /dev, then the requested mounts
    /// and the resolver's configuration.
    private static func fileSystems(_ configuration: InstanceConfiguration, runtime: Runtime,
                                    umask inheritedUmask: mode_t) throws(InstanceError) -> (FileSystemContext, DevFS) {
        let fs: FileSystemContext
        let devices: DevFS
        do throws(Errno) {
            let vfs = VFS(root: try HostFS(hostRoot: "/", io: HostIO(runtime: runtime)))
            // /dev/shm is the host's: POSIX shared memory and semaphores (sem_open) shared
            // by the processes of a fork are host files mapped MAP_SHARED.
            let hostShm = access("/dev/shm", W_OK) == 0
            // /dev/pts too: the slaves of the host's pseudo-terminals that /dev/ptmx gives.
            let hostPts = access("/dev/pts", X_OK) == 0
            devices = DevFS(mountPoints: (hostShm ? ["shm"] : []) + (hostPts ? ["pts"] : []))
            try vfs.mount(devices, at: "/dev")
            if hostShm { try vfs.mount(HostFS(hostRoot: "/dev/shm", io: HostIO(runtime: runtime)), at: "/dev/shm") }
            if hostPts { try vfs.mount(HostFS(hostRoot: "/dev/pts", io: HostIO(runtime: runtime)), at: "/dev/pts") }
            // The working directory is taken before the requested mounts, so a mount
            // over one of its parents (memfs on /tmp, run from /tmp/x) leaves the program
            // in the directory it was started in, as a Linux mount would.
            var buf = [CChar](repeating: 0, count: 4096)
            let cwd = getcwd(&buf, buf.count) != nil ? String(cString: buf) : "/"
            if let context = try? FileSystemContext(vfs: vfs, credentials: .host, cwd: cwd) {
                fs = context
            } else {
                fs = try FileSystemContext(vfs: vfs, credentials: .host, cwd: "/")
            }
        } catch {
            throw .fileSystem("setting up the root file system", error)
        }
        fs.setUmask(UInt32(inheritedUmask))
        for m in configuration.mounts {
            do throws(Errno) {
                switch m {
                case .memfs(let at): try fs.vfs.mount(MemFS(), at: at)
                case let .host(source, at): try fs.vfs.mount(HostFS(hostRoot: source, io: HostIO(runtime: runtime)), at: at)
                }
            } catch {
                let what: String = switch m {
                case .memfs(let at): "mounting memfs on \(at)"
                case let .host(source, at): "mounting host \(source) on \(at)"
                }
                throw .fileSystem(what, error)
            }
        }

        if !configuration.dnsServers.isEmpty {
            try ResolverSetup.check(configuration.dnsServers)
            try ResolverSetup.install(servers: configuration.dnsServers, in: fs.vfs)
        }
        return (fs, devices)
    }

    /// Phase 3: loads `command` into this process and starts its first thread; returns
    /// while it runs.
    public func run(_ command: [String], environment: [String]) throws(InstanceError) {
        precondition(phase == .started, "Instance.run(_:environment:) in phase \(phase)")
        guard let runtime, let fs else { preconditionFailure("a started instance has a runtime") }
        guard let name = command.first else { throw .commandNotFound("") }
        // The program, mapped into this process.
        guard let path = Loader.searchPath(name) else { throw .commandNotFound(name) }
        let ready: ReadyProgram
        do { ready = try Loader.load(path: path, arguments: command, environment: environment) } catch { throw .load(error) }

        // The program keeps the descriptor limit it was started with; the libOS's own host
        // descriptors get the hard limit's headroom.
        DescriptorTable.raiseHostLimit()
        let process: LinuxProcess
        do {
            process = try LinuxProcess(fs: fs, programBreakStart: ready.main.breakStart, executablePath: realPath(ready.program.path))
        } catch {
            throw .runtime("cannot reserve the program break after \(ready.main.breakStart)")
        }
        // comm is the name the program was started by (not the symlink's target).
        process.name = String(ready.program.path.split(separator: "/").last ?? "")
        process.commandLine = ready.program.arguments
        process.environment = environment.map { Array($0.utf8) }
        // Sockets: the host kernel's for AF_INET/AF_INET6/AF_NETLINK; AF_UNIX is the instance's (below).
        process.sockets.set(HostSocketProvider(runtime: runtime), for: SocketConstants.AF_INET, SocketConstants.AF_INET6, SocketConstants.AF_NETLINK)
        for r in [ready.main.range, ready.interpreter?.range].compactMap({ $0 }) { process.addressSpace.add(r) }
        process.addressSpace.setStack(ready.stack)
        if let netProvider { process.sockets.set(netProvider, for: SocketConstants.AF_INET, SocketConstants.AF_INET6, SocketConstants.AF_NETLINK) }
        // /proc: this process as the libOS runs it, the host's /proc for the rest.
        do throws(Errno) {
            try fs.vfs.mount(ProcFS(process: process, host: try HostFS(hostRoot: "/proc", io: HostIO(runtime: runtime))), at: "/proc")
        } catch {
            throw .fileSystem("mounting /proc", error)
        }
        for (fd, path) in [(Int32(0), "/dev/stdin"), (1, "/dev/stdout"), (2, "/dev/stderr")] {
            // The status flags the host description has (access mode, O_APPEND, O_LARGEFILE...).
            let host = fcntl(fd, F_GETFL)
            let kept: Int32 = O_ACCMODE | O_APPEND | O_NONBLOCK | 0o100000 /* O_LARGEFILE */ | O_DSYNC | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */
            let flags = host >= 0 ? OpenFlags(rawValue: host & kept) : (fd == 0 ? OpenFlags() : .writeOnly)
            let file: OpenFile
            do throws(Errno) {
                guard let stream = devices?.standardStream(Int(fd)) else { throw .noSuchFileOrDirectory }
                file = OpenFile(location: stream, handle: try stream.node.open(flags), flags: flags)
            } catch { throw .fileSystem("opening \(path)", error) }
            do { _ = try process.descriptors.install(file, closeOnExec: false) } catch {
                throw .runtime("descriptor table: errno \(error.code)")
            }
        }
        process.sockets.set(UnixSocketProvider(fs: fs, pid: process.pid, exports: configuration.unixExports),
                            for: SocketConstants.AF_UNIX)
        // Dispositions an exec keeps: what the parent ignored stays ignored.
        for sig in inheritedIgnored { process.ignoreAtStart(sig) }
        let dispatcher = Dispatcher(process: process, trace: configuration.trace)
        dispatcher.install()
        self.dispatcher = dispatcher
        self.process = process

        process.signals.kick = ProcessRuntime.kick(kthreadTIDs)
        // fork: a child builds its runtime and signal thread again (ForkCalls.swift).
        LinuxProcess.host = ProcessRuntime.host(kthreads: configuration.kthreads, mode: configuration.interception,
                                                quantum: configuration.quantum, numaNode: configuration.numaNode)
        HostWatcher.shared.attach(to: runtime)

        if let quantum = configuration.quantum {
            Preemption(areas: kthreadAreas, tids: kthreadTIDs, slice: quantum).start()
        }

        let entry = UInt(ready.entry), sp = UInt(ready.stackPointer)
        let mask = initialMask
        phase = .running
        runtime.spawn {
            process.attachMainThread(initialMask: mask)
            cj_enter_application(entry, sp)
        }
    }

    /// Phase 4: the calling thread hands the program the signals that come from
    /// outside until the program ends the process (exit_group).
    public func wait() -> Never {
        precondition(phase == .running, "Instance.wait() in phase \(phase)")
        guard let process else { preconditionFailure("a running instance has a process") }
        ProcessRuntime.signalLoop(process)
    }

    /// Phase 5. Before a program runs (a `start` or `run` that failed): stops the
    /// runtime's kthreads and gives the process back its umask and signal mask. While one
    /// runs: ends its process with `exitStatus`, as its own exit_group would.
    public func shutDown(exitStatus: Int32 = 0) {
        switch phase {
        case .running:
            guard let process else { preconditionFailure("a running instance has a process") }
            process.exitGroup(exitStatus)
        case .configured, .started:
            fs = nil
            devices = nil
            netProvider = nil
            runtime?.shutdown()
            runtime = nil
            if let inheritedUmask { umask(inheritedUmask) }
            if var hostMask { pthread_sigmask(SIG_SETMASK, &hostMask, nil) }
            inheritedUmask = nil
            hostMask = nil
        case .shutDown:
            break
        }
        phase = .shutDown
    }

    /// Every phase at once: configures, starts and runs `command`, then waits; this
    /// process exits with the program's status. Returns only by throwing, before the
    /// program starts (the instance is shut down first).
    public static func run(_ command: [String], environment: [String],
                           configuration: InstanceConfiguration) throws(InstanceError) -> Never {
        let instance = Instance(configuration: configuration)
        do {
            try instance.start()
            try instance.run(command, environment: environment)
        } catch {
            instance.shutDown()
            throw error
        }
        instance.wait()
    }
}
