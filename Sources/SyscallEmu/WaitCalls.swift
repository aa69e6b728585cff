// WaitCalls.swift: the calls between processes of an instance. Processes are host
// processes (host pids), so wait4/waitid ask the host without blocking a kthread (WNOHANG,
// then park until the signal thread sees SIGCHLD), kill to another process or a group
// goes through the host, process groups and sessions are the host's, and SIGCHLD comes
// in from the host like any outside signal (with SIG_IGN and SA_NOCLDWAIT reaping here).
import CJunction
import FileSystem
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Bumped by the signal thread at every SIGCHLD; blocked waits sleep on it.
nonisolated(unsafe) let childEvents: UnsafeMutablePointer<UInt32> = {
    let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

extension Handlers {
    // Linux wait options.
    static let wNoHang: UInt64 = 1, wUntraced: UInt64 = 2, wExited: UInt64 = 4, wContinued: UInt64 = 8
    static let wNoWait: UInt64 = 0x0100_0000
    // SIGCHLD codes and sa_flags.
    static let cldStopped: Int32 = 5, cldContinued: Int32 = 6
    static let saNoCldStop: UInt64 = 1, saNoCldWait: UInt64 = 2

    static func registerWait(_ d: Dispatcher) {
        d.register(.wait4) { f, p throws(LinuxError) in
            let pid = Int32(truncatingIfNeeded: f.a0)
            guard pid != Int32.min else { throw LinuxError(.ESRCH) }
            if f.a1 != 0 { _ = try UserMemory.pointer(f.a1, 4, for: .write) }
            if f.a3 != 0 { _ = try UserMemory.pointer(f.a3, MemoryLayout<rusage>.size, for: .write) }
            return try waitForChild(p, options: f.a2) { () -> Int64 in
                var status: Int32 = 0
                var usage = rusage()
                let r = withUnsafeMutablePointer(to: &status) { s in
                    withUnsafeMutablePointer(to: &usage) { u in
                        cj_host_syscall(61, UInt64(bitPattern: Int64(pid)), UInt64(UInt(bitPattern: s)), f.a2 | wNoHang,
                                        f.a3 != 0 ? UInt64(UInt(bitPattern: u)) : 0, 0, 0)
                    }
                }
                if r > 0 {
                    if f.a1 != 0 { try? UserMemory.store(status, at: f.a1) }
                    if f.a3 != 0 { try? UserMemory.store(usage, at: f.a3) }
                }
                return r
            }
        }
        d.register(.waitid) { f, p throws(LinuxError) in
            var idType = f.a0, id = f.a1
            if idType == 3 {  // P_PIDFD: the host pidfd behind the descriptor
                guard let fd = try p.fd(f.a1).handle.hostDescriptor else { throw LinuxError(.EINVAL) }
                id = UInt64(fd)
                idType = 3
            }
            if f.a2 != 0 { _ = try UserMemory.pointer(f.a2, 128, for: .write) }
            if f.a4 != 0 { _ = try UserMemory.pointer(f.a4, MemoryLayout<rusage>.size, for: .write) }
            _ = try waitForChild(p, options: f.a3) { () -> Int64 in
                var info = siginfo_t()
                var usage = rusage()
                let r = withUnsafeMutablePointer(to: &info) { i in
                    withUnsafeMutablePointer(to: &usage) { u in
                        cj_host_syscall(247, idType, id, UInt64(UInt(bitPattern: i)), f.a3 | wNoHang,
                                        f.a4 != 0 ? UInt64(UInt(bitPattern: u)) : 0, 0)
                    }
                }
                if r < 0 { return r }
                if f.a2 != 0 { try? UserMemory.store(info, at: f.a2) }
                if f.a4 != 0 { try? UserMemory.store(usage, at: f.a4) }
                // A child found: 1 to the loop (waitid returns 0); none yet: 0.
                return info._sifields._kill.si_pid != 0 ? 1 : 0
            }
            return 0
        }
        d.register(.setpgid) { f, _ throws(LinuxError) in try hostCall(109, f.a0, f.a1) }
        d.register(.setsid) { _, _ throws(LinuxError) in try hostCall(112) }
        d.register(.pidfd_open) { f, p throws(LinuxError) in
            let fd = try hostCall(434, f.a0, f.a1)
            return Int64(try installHost(Int32(fd), p, path: "anon_inode:[pidfd]", closeOnExec: true))
        }
        d.register(.pidfd_send_signal) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            if let r = try signalThroughPidDirectory(f, p, file) { return r }  // PidDirectorySignal.swift
            if let fd = file.handle.hostDescriptor { return try hostCall(424, UInt64(fd), f.a1, f.a2, f.a3) }
            // Another process's /proc/PID directory (Linux takes it as that process's
            // pidfd): a host process, reached through a pidfd of its own.
            let path = file.location.path
            guard path.hasPrefix("/proc/"), let pid = Int32(path.dropFirst(6)), pid > 0, pid != p.pid else { throw LinuxError(.EBADF) }
            let pidfd = try hostCall(434, UInt64(pid))
            defer { close(Int32(pidfd)) }
            return try hostCall(424, UInt64(pidfd), f.a1, f.a2, f.a3)
        }
    }

    static func hostCall(_ nr: Int64, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0) throws(LinuxError) -> Int64 {
        let r = cj_host_syscall(nr, a, b, c, d, 0, 0)
        if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
        return r
    }

    /// A host descriptor (a pidfd) as a descriptor of the process; readiness through the
    /// host watcher.
    static func installHost(_ fd: Int32, _ p: LinuxProcess, path: String, closeOnExec: Bool) throws(LinuxError) -> Int32 {
        let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: path),
                            handle: HostObjectHandle(fd: fd), flags: OpenFlags())
        return try p.descriptors.install(file, closeOnExec: closeOnExec)
    }

    /// wait4/waitid's loop: `attempt` asks the host without blocking (> 0: done, 0: no
    /// child ready yet, < 0: -errno); without WNOHANG the uthread parks until the next
    /// SIGCHLD, and a signal for it ends the wait (ERESTARTSYS).
    static func waitForChild(_ p: LinuxProcess, options: UInt64, _ attempt: () -> Int64) throws(LinuxError) -> Int64 {
        while true {
            let seen = cj_load_acquire_u32(childEvents)
            let r = attempt()
            if r < 0 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if r > 0 || options & wNoHang != 0 { return r }
            switch futexTable.wait(on: childEvents, expected: seen, deadline: nil, bitset: WaitTable.matchAny) {
            case .woken, .valueMismatch, .timedOut: continue
            case .interrupted: try p.checkInterrupted(.restartSys)
            }
        }
    }

    /// The signal thread's SIGCHLD: wakes waiting calls, reaps children itself where the
    /// application's disposition says they leave no zombie, and says whether the
    /// application is to receive the signal.
    static func childStateChanged(_ p: LinuxProcess, code: Int32) -> Bool {
        let a = p.signals.action(SIGCHLD)
        if a.handler == 1 || a.flags & saNoCldWait != 0 {
            var info = siginfo_t()
            while waitid(P_ALL, 0, &info, WEXITED | WNOHANG) == 0 && info._sifields._kill.si_pid != 0 {}
        }
        cj_store_release_u32(childEvents, cj_load_acquire_u32(childEvents) &+ 1)
        futexTable.wake(UnsafeRawPointer(childEvents), count: Int(Int32.max))
        if (code == cldStopped || code == cldContinued) && a.flags & saNoCldStop != 0 { return false }
        return true
    }
}

/// A host kernel object as an open file (a pidfd): readable when the host says so.
final class HostObjectHandle: FileHandle, @unchecked Sendable {
    let fd: Int32
    private let observers = ReadinessObservers()

    init(fd: Int32) {
        self.fd = fd
        let o = observers
        HostWatcher.shared.watch(fd) { [fd] in
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            o.notify(Glibc.poll(&p, 1, 0) > 0 ? [.readable] : [])
        }
    }

    var isSeekable: Bool { false }
    var hostDescriptor: Int32? { fd }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func size() throws(Errno) -> Int64 { 0 }
    func close() {
        HostWatcher.shared.unwatch(fd)
        Glibc.close(fd)
    }
    var readiness: Readiness {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, 0) > 0 ? [.readable] : []
    }
    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }
}
