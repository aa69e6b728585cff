// Process.swift: the state system calls act on: the file descriptor table, the file
// system context, the program break, identity and exit.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor table: lowest free number first, close-on-exec per descriptor.
public final class DescriptorTable: @unchecked Sendable {
    // Tunables: RLIMIT_NOFILE's usual soft limit.
    public static let limit: Int32 = 1024

    struct Entry {
        var file: OpenFile
        var closeOnExec: Bool
    }

    private let lock = FSLock()
    private var entries: [Int32: Entry] = [:]

    public init() {}

    public func get(_ fd: Int32) throws(LinuxError) -> OpenFile {
        guard let e = lock.withLock({ entries[fd] }) else { throw LinuxError(.EBADF) }
        return e.file
    }

    /// Installs `file` at the lowest free number at or above `minimum`.
    public func install(_ file: OpenFile, closeOnExec: Bool, minimum: Int32 = 0) throws(LinuxError) -> Int32 {
        try lock.withLock { () throws(LinuxError) -> Int32 in
            var fd = minimum
            while entries[fd] != nil { fd += 1 }
            guard fd < Self.limit else { throw LinuxError(.EMFILE) }
            entries[fd] = Entry(file: file, closeOnExec: closeOnExec)
            return fd
        }
    }

    /// dup2/dup3: puts `file` at `fd`, closing what was there.
    public func install(_ file: OpenFile, at fd: Int32, closeOnExec: Bool) throws(LinuxError) {
        guard fd >= 0, fd < Self.limit else { throw LinuxError(.EBADF) }
        let old = lock.withLock { entries.updateValue(Entry(file: file, closeOnExec: closeOnExec), forKey: fd) }
        _ = old  // released here, outside the lock
    }

    /// execve: closes the close-on-exec descriptors.
    public func closeOnExecAll() {
        let closed = lock.withLock { () -> [Entry] in
            let c = entries.filter { $0.value.closeOnExec }
            for k in c.keys { entries[k] = nil }
            return Array(c.values)
        }
        _ = closed  // released here, outside the lock
    }

    /// Every descriptor and its open file, lowest first (/proc/self/fd).
    public func snapshot() -> [(Int32, OpenFile)] {
        lock.withLock { entries.map { ($0.key, $0.value.file) }.sorted { $0.0 < $1.0 } }
    }

    public func close(_ fd: Int32) throws(LinuxError) {
        guard let old = lock.withLock({ entries.removeValue(forKey: fd) }) else { throw LinuxError(.EBADF) }
        _ = old
    }

    public func closeOnExec(_ fd: Int32) throws(LinuxError) -> Bool {
        guard let e = lock.withLock({ entries[fd] }) else { throw LinuxError(.EBADF) }
        return e.closeOnExec
    }

    public func setCloseOnExec(_ fd: Int32, _ value: Bool) throws(LinuxError) {
        try lock.withLock { () throws(LinuxError) in
            guard entries[fd] != nil else { throw LinuxError(.EBADF) }
            entries[fd]!.closeOnExec = value
        }
    }
}

/// The program break: a reserved range after the program's data, made accessible as
/// brk grows (the host process's own heap is never touched).
public final class ProgramBreak: @unchecked Sendable {
    // Tunables: how far brk may grow.
    public static let reservation: UInt64 = 1 << 30

    private let lock = FSLock()
    public private(set) var start: UInt64
    private var current: UInt64
    private var mappedEnd: UInt64

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
    public internal(set) var pid: Int32
    /// vfork's parent waits until this host pipe end closes (exec or exit); -1 otherwise.
    var vforkRelease: Int32 = -1
    /// A CLONE_VM vfork child: its parent's pid and stack pointer at the clone.
    var vforkShared: (pid: Int32, stack: UInt64)?
    /// PR_SET_PDEATHSIG's signal (set on the host too); a child starts without one.
    var deathSignal: Int32 = 0
    /// The path /proc/self/exe names.
    public internal(set) var executablePath: String
    private let lock = FSLock()
    private var _name: String
    /// Dispositions, pending signals, the application threads.
    public let signals: ProcessSignals
    /// The application's mappings (for /proc/self/maps).
    public let addressSpace = AddressSpace()
    /// Who makes sockets, by family (SocketHandle.swift); LibOS fills it.
    public let sockets = SocketProviders()
    /// What /proc/self/cmdline and environ show.
    public var commandLine: [String] = []
    public var environment: [String] = []
    let alarm = AlarmClock()

    public init(fs: FileSystemContext, programBreakStart: UInt64, executablePath: String, pid: Int32 = getpid()) throws(LinuxError) {
        self.fs = fs
        programBreak = try ProgramBreak(start: programBreakStart)
        self.executablePath = executablePath
        self.pid = pid
        signals = ProcessSignals(pid: pid)
        _name = String(executablePath.split(separator: "/").last ?? "")
    }

    /// The thread name (PR_SET_NAME), up to 15 bytes.
    public var name: String {
        get { lock.withLock { _name } }
        set { lock.withLock { _name = String(newValue.utf8.prefix(15)) ?? "" } }
    }

    /// Ends the whole instance with `status` (exit_group).
    public func exitGroup(_ status: Int32) -> Never {
        Handlers.beforeExit(self)
        _exit(status & 0xff)
    }
}
