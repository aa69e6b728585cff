// Process.swift: the state system calls act on: the file descriptor table, the file
// system context, the program break, identity and exit.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor table: lowest free number first, close-on-exec per descriptor,
/// bounded by the process's RLIMIT_NOFILE (the emulated soft limit: the host process's
/// own limit is raised to its hard limit at start, so host files never run out first).
public final class DescriptorTable: @unchecked Sendable {
    // Tunables: RLIMIT_NOFILE's usual soft limit, when the host says nothing else.
    public static let defaultLimit: Int32 = 1024

    struct Entry {
        var file: OpenFile
        var closeOnExec: Bool
    }

    private let lock = SpinLock()
    /// Indexed by descriptor; grows on demand (never past `limit`).
    @exclusivity(unchecked) private var entries: [Entry?] = []
    /// No descriptor below this one is free (Linux's next_fd hint).
    @exclusivity(unchecked) private var lowestFree: Int32 = 0
    /// The highest descriptor ever installed: Linux's fdtable grows and never shrinks.
    @exclusivity(unchecked) private var highWater: Int32 = -1
    @exclusivity(unchecked) private var _limit: Int32

    /// `limit`: the starting RLIMIT_NOFILE soft limit (by default the host's soft limit as
    /// it was before `raiseHostLimit`).
    public init(limit: Int32? = nil) {
        _limit = limit ?? Self.startingSoftLimit
    }

    /// The host's soft limit when the libOS first looked: what the program inherited.
    public static let startingSoftLimit: Int32 = hostLimits().soft

    /// The host process's RLIMIT_NOFILE, soft and hard, clamped to Int32.
    public static func hostLimits() -> (soft: Int32, hard: Int32) {
        var r = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &r) == 0 else { return (defaultLimit, defaultLimit) }
        let clamp = { (v: rlim_t) -> Int32 in v > rlim_t(Int32.max) ? Int32.max : Int32(v) }
        return (clamp(r.rlim_cur), clamp(r.rlim_max))
    }

    /// Raises the host process's soft RLIMIT_NOFILE to its hard limit, so the libOS's own
    /// host descriptors (HostFS files, sockets, rings) never hit it before the program's
    /// emulated limit does. Returns the hard limit.
    @discardableResult
    public static func raiseHostLimit() -> Int32 {
        _ = startingSoftLimit  // read before it changes
        var r = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &r) == 0 else { return defaultLimit }
        if r.rlim_cur != r.rlim_max {
            r.rlim_cur = r.rlim_max
            _ = setrlimit(RLIMIT_NOFILE_VALUE, &r)
        }
        return hostLimits().hard
    }

    /// RLIMIT_NOFILE's soft limit as the program sees it (getrlimit/setrlimit/prlimit64).
    public var limit: Int32 {
        get { lock.withLock { _limit } }
        set { lock.withLock { _limit = max(0, newValue) } }
    }

    public func get(_ fd: Int32) throws(LinuxError) -> OpenFile {
        guard let e = lock.withLock({ fd >= 0 && Int(fd) < entries.count ? entries[Int(fd)] : nil }) else {
            throw LinuxError(.EBADF)
        }
        return e.file
    }

    /// Installs `file` at the lowest free number at or above `minimum` (F_DUPFD: EINVAL
    /// for a minimum outside [0, RLIMIT_NOFILE), as Linux; EMFILE when the table is full).
    public func install(_ file: OpenFile, closeOnExec: Bool, minimum: Int32 = 0) throws(LinuxError) -> Int32 {
        try lock.withLock { () throws(LinuxError) -> Int32 in
            guard minimum >= 0, minimum < _limit else { throw minimum == 0 ? LinuxError(.EMFILE) : LinuxError(.EINVAL) }
            var fd = max(minimum, lowestFree)
            while Int(fd) < entries.count, entries[Int(fd)] != nil { fd += 1 }
            guard fd < _limit else { throw LinuxError(.EMFILE) }
            store(Entry(file: file, closeOnExec: closeOnExec), at: fd)
            if minimum <= lowestFree { lowestFree = fd + 1 }
            return fd
        }
    }

    /// dup2/dup3: puts `file` at `fd`, closing what was there (EBADF past RLIMIT_NOFILE).
    public func install(_ file: OpenFile, at fd: Int32, closeOnExec: Bool) throws(LinuxError) {
        let old = try lock.withLock { () throws(LinuxError) -> Entry? in
            guard fd >= 0, fd < _limit else { throw LinuxError(.EBADF) }
            let old = Int(fd) < entries.count ? entries[Int(fd)] : nil
            store(Entry(file: file, closeOnExec: closeOnExec), at: fd)
            return old
        }
        _ = old  // released here, outside the lock
    }

    /// Under the lock: sets slot `fd`, growing the array geometrically.
    private func store(_ e: Entry?, at fd: Int32) {
        if Int(fd) >= entries.count {
            let grown = min(Int(_limit), max(Int(fd) + 1, entries.count * 2, 64))
            entries.append(contentsOf: repeatElement(nil, count: grown - entries.count))
        }
        entries[Int(fd)] = e
        if e != nil, fd > highWater { highWater = fd }
    }

    /// The highest descriptor this table ever held (-1: none), for select's table size.
    public var highestEverInstalled: Int32 { lock.withLock { highWater } }

    /// Under the lock: empties slot `fd` and returns what was there.
    private func take(_ fd: Int32) -> Entry? {
        guard fd >= 0, Int(fd) < entries.count, let e = entries[Int(fd)] else { return nil }
        entries[Int(fd)] = nil
        if fd < lowestFree { lowestFree = fd }
        return e
    }

    /// execve: closes the close-on-exec descriptors.
    public func closeOnExecAll() {
        let closed = lock.withLock { () -> [Entry] in
            var c: [Entry] = []
            for fd in entries.indices where entries[fd]?.closeOnExec == true {
                if let e = take(Int32(fd)) { c.append(e) }
            }
            return c
        }
        _ = closed  // released here, outside the lock
    }

    /// Every descriptor and its open file, lowest first (/proc/self/fd).
    public func snapshot() -> [(Int32, OpenFile)] {
        lock.withLock { entries.indices.compactMap { i in entries[i].map { (Int32(i), $0.file) } } }
    }

    public func close(_ fd: Int32) throws(LinuxError) {
        guard let old = lock.withLock({ take(fd) }) else { throw LinuxError(.EBADF) }
        _ = old
    }

    public func closeOnExec(_ fd: Int32) throws(LinuxError) -> Bool {
        guard let e = lock.withLock({ fd >= 0 && Int(fd) < entries.count ? entries[Int(fd)] : nil }) else {
            throw LinuxError(.EBADF)
        }
        return e.closeOnExec
    }

    public func setCloseOnExec(_ fd: Int32, _ value: Bool) throws(LinuxError) {
        try lock.withLock { () throws(LinuxError) in
            guard fd >= 0, Int(fd) < entries.count, entries[Int(fd)] != nil else { throw LinuxError(.EBADF) }
            entries[Int(fd)]!.closeOnExec = value
        }
    }
}

/// RLIMIT_NOFILE as Glibc's imported constant type (an enum-typed value on glibc).
let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

/// The program break: a reserved range after the program's data, made accessible as
/// brk grows (the host process's own heap is never touched).
public final class ProgramBreak: @unchecked Sendable {
    // Tunables: how far brk may grow.
    public static let reservation: UInt64 = 1 << 30

    private let lock = SpinLock()
    @exclusivity(unchecked) public private(set) var start: UInt64
    @exclusivity(unchecked) private var current: UInt64
    @exclusivity(unchecked) private var mappedEnd: UInt64

    /// Whether `release` gave the reservation back already.
    private var released = false

    /// execve, before the new program is mapped: gives the reservation back (a program at
    /// a fixed address may need that range: a non-PIE gcc's break lies where cc1 goes).
    public func release() {
        lock.withLock {
            if !released { _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(start)), Int(Self.reservation)) }
            released = true
        }
    }

    /// execve: gives the old reservation back and reserves again after `newStart`.
    public func reset(start newStart: UInt64) throws(LinuxError) {
        // The old reservation goes first: the new program's break may start in it.
        lock.withLock {
            if !released { _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(start)), Int(Self.reservation)) }
            released = false
        }
        let fresh = try ProgramBreak(start: newStart)  // its reservation becomes ours (no deinit unmaps)
        lock.withLock {
            start = fresh.start
            current = fresh.start
            mappedEnd = fresh.start
        }
    }

    public init(start: UInt64) throws(LinuxError) {
        // Right after the program's data where that range is free (as Linux places it),
        // anywhere otherwise (a position-independent program's neighbours may be there).
        var s = (start + 4095) & ~4095
        var r = mmap(UnsafeMutableRawPointer(bitPattern: UInt(s)), Int(Self.reservation), PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0)
        if r == nil || r == MAP_FAILED || UInt64(UInt(bitPattern: r)) != s {
            if let r, r != MAP_FAILED { munmap(r, Int(Self.reservation)) }
            r = mmap(nil, Int(Self.reservation), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let r, r != MAP_FAILED else { throw LinuxError(.ENOMEM) }
            s = UInt64(UInt(bitPattern: r))
        }
        self.start = s
        current = s
        mappedEnd = s
    }

    /// The heap as /proc/self/maps shows it: from the start to the break (page-rounded).
    /// Whether [start, end) lies inside the heap (up to the break).
    public func contains(_ start: UInt64, _ end: UInt64) -> Bool {
        lock.withLock { start >= self.start && end <= max(self.start, (current + 4095) & ~4095) }
    }

    public var heap: Range<UInt64> { lock.withLock { start..<max(start, (current + 4095) & ~4095) } }

    /// brk(2): moves the break if it can, and returns the break (the old one on failure).
    public func move(to requested: UInt64) -> UInt64 {
        lock.withLock {
            guard requested >= start, requested <= start + Self.reservation else { return current }
            let needed = (requested + 4095) & ~4095
            if needed > mappedEnd {
                let ok = mprotect(UnsafeMutableRawPointer(bitPattern: UInt(mappedEnd)), Int(needed - mappedEnd), PROT_READ | PROT_WRITE) == 0
                if !ok { return current }
                mappedEnd = needed
            } else if needed < mappedEnd {
                // Give the pages back, keep the reservation.
                _ = mmap(UnsafeMutableRawPointer(bitPattern: UInt(needed)), Int(mappedEnd - needed), PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
                mappedEnd = needed
            }
            current = requested
            return current
        }
    }
}

/// A Linux process running inside the instance.
public final class LinuxProcess: @unchecked Sendable {
    public let fs: FileSystemContext
    public let descriptors = DescriptorTable()
    public let programBreak: ProgramBreak
    /// The host pid (a forked child takes its own).
    public internal(set) var pid: Int32 {
        didSet { if let d = Dispatcher.active, d.process === self { d.refreshLeafCalls() } }
    }
    /// vfork's parent waits until this host pipe end closes (exec or exit); -1 otherwise.
    var vforkRelease: Int32 = -1
    /// A CLONE_VM vfork child: its parent's pid and stack pointer at the clone.
    var vforkShared: (pid: Int32, stack: UInt64)?
    /// PR_SET_PDEATHSIG's signal (set on the host too); a child starts without one.
    var deathSignal: Int32 = 0
    /// The path /proc/self/exe names.
    public internal(set) var executablePath: String
    private let lock = SpinLock()
    private var _name: String
    /// Dispositions, pending signals, the application threads.
    public let signals: ProcessSignals
    /// The application's mappings (for /proc/self/maps).
    public let addressSpace = AddressSpace()
    /// Who makes sockets, by family (SocketHandle.swift); LibOS fills it.
    public let sockets = SocketProviders()
    /// What /proc/self/cmdline and environ show: argv and envp's bytes, as execve got them.
    public var commandLine: [[UInt8]] = []
    public var environment: [[UInt8]] = []
    /// Identity, scheduling, host name and timer state (CompatibilityCalls.swift).
    let compat = CompatibilityState()

    public init(fs: FileSystemContext, programBreakStart: UInt64, executablePath: String, pid: Int32 = getpid()) throws(LinuxError) {
        self.fs = fs
        programBreak = try ProgramBreak(start: programBreakStart)
        self.executablePath = executablePath
        self.pid = pid
        signals = ProcessSignals(pid: pid)
        _name = String(executablePath.split(separator: "/").last ?? "")
        sockets.set(UnixSocketProvider(fs: fs, pid: pid), for: SocketConstants.AF_UNIX)
    }

    /// The thread name (PR_SET_NAME), up to 15 bytes.
    public var name: String {
        get { lock.withLock { _name } }
        set { lock.withLock { _name = String(newValue.utf8.prefix(15)) ?? "" } }
    }

    /// Ends the whole instance with `status` (exit_group).
    public func exitGroup(_ status: Int32) -> Never {
        sockets.processExiting()
        Handlers.beforeExit(self)
        _exit(status & 0xff)
    }
}
