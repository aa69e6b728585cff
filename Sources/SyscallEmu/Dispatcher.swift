// Dispatcher.swift: the system-call table: number -> handler; unknown numbers return
// ENOSYS and are logged once; --strace prints every call and its result.
import CJunction
import FileSystem
import Logging
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A handler: arguments in, result (>= 0) out, or a LinuxError.
public typealias SyscallHandler = (SyscallFrame, LinuxProcess) throws(LinuxError) -> Int64

/// The table and the entry point the interception layer calls.
public final class Dispatcher: @unchecked Sendable {
    /// Call numbers the table covers (x86-64 numbers end at 469; the x32 ABI's start at 512).
    public static let tableSize = 512

    @exclusivity(unchecked) private var handlers: [SyscallHandler?]
    public let process: LinuxProcess
    @exclusivity(unchecked) public var trace: Bool {
        didSet { refreshLeafCalls() }
    }
    /// Whether getpid's and clock_gettime's handlers are the default ones, which the entry
    /// code may answer by itself from rewritten sites (cj_set_leaf_calls).
    @exclusivity(unchecked) private var leafGetpid = false, leafClock = false
    private let lock = SpinLock()
    @exclusivity(unchecked) private var reportedUnknown = Set<Int>()
    /// Calls registered more than once (the later handler replaced the earlier one).
    public private(set) var replacedRegistrations: [SyscallNumber] = []
    /// Where this dispatcher's diagnostics go: unsupported calls (warning), refusals
    /// (error), --strace lines (info). Default: the process's LoggingSystem.
    public let logger: Logger

    public init(process: LinuxProcess, trace: Bool = false, logger: Logger = Logger(label: "junction.syscalls")) {
        self.process = process
        self.trace = trace
        self.logger = logger
        handlers = Array(repeating: nil, count: Self.tableSize)
        Handlers.registerAll(self)
    }

    /// Adds the handler for `call`, or replaces the one it had (noted in
    /// ``replacedRegistrations``).
    public func register(_ call: SyscallNumber, _ handler: @escaping SyscallHandler) {
        if handlers[call.rawValue] != nil { replacedRegistrations.append(call) }
        handlers[call.rawValue] = handler
        noLeaf(call)
    }

    /// Registers the default handler of a call the entry code can answer itself from
    /// rewritten sites (getpid, clock_gettime): same answers, without the dispatcher.
    func registerLeaf(_ call: SyscallNumber, _ handler: @escaping SyscallHandler) {
        register(call, handler)
        if call == .getpid { leafGetpid = true }
        if call == .clock_gettime { leafClock = true }
        refreshLeafCalls()
    }

    private func noLeaf(_ call: SyscallNumber) {
        guard call == .getpid || call == .clock_gettime else { return }
        if call == .getpid { leafGetpid = false } else { leafClock = false }
        refreshLeafCalls()
    }

    /// Tells the entry code which leaf calls it may answer for the installed dispatcher:
    /// none while calls are traced or a handler was replaced; getpid with this process's
    /// pid (again after a fork changes it).
    func refreshLeafCalls() {
        guard Dispatcher.active === self else { return }
        cj_set_leaf_calls(!trace && leafGetpid ? process.pid : 0, !trace && leafClock)
    }

    /// Removes the handler for `call`: it returns ENOSYS (and is logged once) from then on.
    public func unregister(_ call: SyscallNumber) {
        handlers[call.rawValue] = nil
        noLeaf(call)
    }

    /// The name strace gives call `number` (`syscall_N` where no x86-64 call has it).
    public func name(of number: Int) -> String {
        SyscallNumber.name(of: number) ?? "syscall_\(number)"
    }

    /// The numbers that have a handler (Documentation/Syscalls.md is checked against it).
    public var registeredNumbers: [Int] { handlers.indices.filter { handlers[$0] != nil } }

    /// Runs one call; returns rax.
    public func dispatch(_ frame: SyscallFrame) -> Int64 {
        // A fork stops the world here too: no lock is held yet (ForkCalls.swift).
        Runtime.quiescePoint()
        // A fault in application code or the kick: no call to run.
        if frame.raw.pointee.pad.0 >= UInt64(CJ_ENTRY_FAULT) { return Handlers.arrival(frame, process) }
        let nr = frame.number
        // exit and exit_group do not return: trace them first, as strace does.
        if trace && (nr == SyscallNumber.exit.rawValue || nr == SyscallNumber.exit_group.rawValue) { log(level: .info, "\(name(of: nr))(\(Int64(bitPattern: frame.a0))) = ?") }
        // Arguments as passed (a handler may redirect the frame, e.g. into a signal handler).
        let arguments = trace ? frame.arguments : []
        var result: Int64
        if nr >= 0, nr < Self.tableSize, let h = handlers[nr] {
            do { result = try h(frame, process) } catch { result = -Int64(error.code) }
        } else {
            let first = lock.withLock { reportedUnknown.insert(nr).inserted }
            if first { log(level: .warning, "junction: unsupported system call \(nr) (\(name(of: nr))): returning ENOSYS") }
            result = -Int64(LinuxError.Code.ENOSYS.rawValue)
        }
        if trace { log(level: .info, Strace.line(name: name(of: nr), arguments: arguments, result: result)) }
        // Pending signals go out as the call returns; ERESTART* results are settled.
        if process.signals.pendingCount.load(ordering: .relaxed) != 0 || LinuxError.isRestart(result) {
            result = Handlers.afterCall(frame, process, result: result)
        }
        return result
    }

    func log(level: Logger.Level, _ s: String) { Self.emit(logger, level, s) }

    /// Once the instance has more than one process, lines carry the pid (as
    /// `strace -f` prints them).
    nonisolated(unsafe) static var tagLines = false

    /// The funnel for diagnostics outside a dispatcher's own calls: the active
    /// dispatcher's logger (the default one before any is installed).
    static func log(level: Logger.Level, _ s: String) {
        emit(active?.logger ?? fallbackLogger, level, s)
    }

    private static func emit(_ logger: Logger, _ level: Logger.Level, _ s: String) {
        logger.log(level: level, "\(tagLines ? "[pid \(getpid())] " : "")\(s)")
    }

    /// A libOS warning (the default level of the funnel).
    static func log(_ s: String) { log(level: .warning, s) }

    private static let fallbackLogger = Logger(label: "junction.syscalls")

    // MARK: installation

    /// The installed dispatcher, for diagnostics and error paths outside a call's own
    /// arguments (the per-call path gets it as the interception's handler context).
    @exclusivity(unchecked) nonisolated(unsafe) static var active: Dispatcher?

    /// Makes this dispatcher receive every intercepted call: the interception layer
    /// passes it back as the handler's context, so the per-call path loads no global
    /// (the instance that installs it keeps it alive; `active` retains it too).
    public func install() {
        Dispatcher.active = self
        UserMemory.owner = process
        cj_set_syscall_handler({ context, frame in
            Unmanaged<Dispatcher>.fromOpaque(context!)._withUnsafeGuaranteedRef { $0.dispatch(SyscallFrame(frame!)) }
        }, Unmanaged.passUnretained(self).toOpaque())
        refreshLeafCalls()
    }
}

/// strace-style lines: name(args) = result.
enum Strace {
    static func line(name: String, arguments: [UInt64], result: Int64) -> String {
        let args = arguments.prefix(argumentCount(name)).map { describe($0, name) }.joined(separator: ", ")
        let r = LinuxError.isRestart(result) ? "? \(result == -512 ? "ERESTARTSYS" : "ERESTARTNOHAND") (To be restarted)"
            : result < 0 && result > -4096 ? "-1 \(Errno(rawValue: Int32(-result)))" : (result > 0xFFFF ? "0x" + String(result, radix: 16) : "\(result)")
        return "\(name)(\(args)) = \(r)"
    }

    static func argumentCount(_ name: String) -> Int {
        switch name {
        case "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getppid", "sched_yield": 0
        case "close", "exit", "exit_group", "brk", "dup", "umask", "chdir", "fchdir", "set_tid_address", "uname": 1
        case "arch_prctl", "dup2", "pipe2", "munmap", "fstat", "stat", "lstat", "access", "mkdir", "rename", "getcwd": 2
        case "read", "write", "lseek", "openat", "mprotect", "readv", "writev", "getdents64", "dup3", "fcntl", "ioctl", "getrandom": 3
        case "newfstatat", "rt_sigaction", "rt_sigprocmask", "pread64", "pwrite64", "prlimit64", "sendfile": 4
        case "mmap": 6
        default: 6
        }
    }

    static func describe(_ v: UInt64, _ name: String) -> String {
        let signed = Int64(bitPattern: v)
        if signed >= -4096 && signed <= 0xFFFF { return "\(signed)" }
        return "0x" + String(v, radix: 16)
    }
}
