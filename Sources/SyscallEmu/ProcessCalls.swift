// ProcessCalls.swift: memory (brk emulated, mmap family on the host), identity, time,
// thread-setup and signal-state calls of a first real program.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Every handler table, registered by area.
public enum Handlers {
    static func registerAll(_ d: Dispatcher) {
        registerFiles(d)
        registerMemory(d)
        registerProcess(d)
        registerFutex(d)
        registerMoreFiles(d)
        registerThreads(d)
        registerPoll(d)
        registerSignals(d)
    }

    /// Forwards a call to the host kernel unchanged (its pointers are valid here: the
    /// application shares this address space).
    static func host(_ nr: Int, _ name: String, _ d: Dispatcher) {
        d.register(nr, name) { f, _ throws(LinuxError) in
            let r = cj_host_syscall(Int64(nr), f.a0, f.a1, f.a2, f.a3, f.a4, f.a5)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            return r
        }
    }

    static func registerMemory(_ d: Dispatcher) {
        // brk(0) (or any address it cannot move to) returns the current break.
        d.register(12, "brk") { f, p throws(LinuxError) in Int64(bitPattern: p.programBreak.move(to: f.a0)) }
        d.register(9, "mmap") { f, p throws(LinuxError) in
            let flags = Int32(truncatingIfNeeded: f.a3)
            var fd = Int64(bitPattern: f.a4)
            if flags & MAP_ANONYMOUS == 0 {
                // A file mapping: map the host file behind the descriptor.
                let file = try p.fd(f.a4)
                guard let host = file.handle.hostDescriptor else { throw LinuxError(.ENODEV) }
                fd = Int64(host)
            }
            let r = cj_host_syscall(9, f.a0, f.a1, f.a2, f.a3, UInt64(bitPattern: fd), f.a5)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            return r
        }
        host(10, "mprotect", d)
        host(11, "munmap", d)
        host(25, "mremap", d)
        host(26, "msync", d)
        host(27, "mincore", d)
        host(28, "madvise", d)
    }

    /// What a signal does on arrival: its application handler runs as the current call
    /// returns `result`; with no handler, the default action (ignore, or end the process
    /// with that signal, as the kernel would).
    static func act(on sig: Int32, code: Int32, result: Int64, _ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let action = p.exchangeAction(Int(sig), nil)
        if action.0 == 1 { return result }  // SIG_IGN
        if action.0 == 0 {
            if [SIGCHLD, SIGURG, SIGWINCH, SIGCONT].contains(sig) { return result }
            signal(sig, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, sig)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            raise(sig)
            return result
        }
        return try deliver(sig, code: code, action: action, result: result, frame: f, process: p)
    }

    static func registerProcess(_ d: Dispatcher) {
        d.register(231, "exit_group") { f, p throws(LinuxError) in p.exitGroup(Int32(truncatingIfNeeded: f.a0)) }
        d.register(39, "getpid") { _, p throws(LinuxError) in Int64(p.pid) }
        for (nr, name) in [(110, "getppid"), (102, "getuid"), (107, "geteuid"), (104, "getgid"), (108, "getegid"),
                           (115, "getgroups"), (111, "getpgrp"), (121, "getpgid"), (124, "getsid"),
                           (63, "uname"), (318, "getrandom"), (302, "prlimit64"), (97, "getrlimit"), (99, "sysinfo"),
                           (228, "clock_gettime"), (229, "clock_getres"), (96, "gettimeofday"), (201, "time"),
                           (100, "times"), (98, "getrusage"), (204, "sched_getaffinity"), (309, "getcpu")] {
            host(nr, name, d)
        }
        d.register(158, "arch_prctl") { f, _ throws(LinuxError) in
            switch f.a0 {
            case 0x1002:  // ARCH_SET_FS: the value the exit path loads into %fs
                guard UserMemory.isPlausible(f.a1) || f.a1 == 0 else { throw LinuxError(.EPERM) }
                f.fsBase = f.a1
                return 0
            case 0x1003:  // ARCH_GET_FS
                try UserMemory.store(f.fsBase, at: f.a1)
                return 0
            default:
                throw LinuxError(.EINVAL)
            }
        }
        d.register(273, "set_robust_list") { f, _ throws(LinuxError) in
            guard f.a1 == 24 else { throw LinuxError(.EINVAL) }
            return 0
        }
        // rseq is per kernel thread, and uthreads share kthreads: say it is not there,
        // which glibc handles.
        d.register(334, "rseq") { _, _ throws(LinuxError) in throw LinuxError(.ENOSYS) }
        d.register(24, "sched_yield") { _, _ throws(LinuxError) in
            UThread.yield()
            return 0
        }
        d.register(35, "nanosleep") { f, _ throws(LinuxError) in
            let sec = try UserMemory.load(Int64.self, at: f.a0), nsec = try UserMemory.load(Int64.self, at: f.a0 + 8)
            guard sec >= 0, nsec >= 0, nsec < 1_000_000_000 else { throw LinuxError(.EINVAL) }
            UThread.sleep(for: .seconds(sec) + .nanoseconds(nsec))
            return 0
        }
        d.register(230, "clock_nanosleep") { f, _ throws(LinuxError) in
            let sec = try UserMemory.load(Int64.self, at: f.a2), nsec = try UserMemory.load(Int64.self, at: f.a2 + 8)
            guard sec >= 0, nsec >= 0, nsec < 1_000_000_000 else { throw LinuxError(.EINVAL) }
            if f.a1 & 1 != 0 {  // TIMER_ABSTIME on CLOCK_MONOTONIC (or REALTIME, approximated)
                var now = timespec()
                clock_gettime(clockid_t(f.a0), &now)
                let delta = (sec - Int64(now.tv_sec)) * 1_000_000_000 + (nsec - Int64(now.tv_nsec))
                if delta > 0 { UThread.sleep(for: .nanoseconds(delta)) }
            } else {
                UThread.sleep(for: .seconds(sec) + .nanoseconds(nsec))
            }
            return 0
        }
        d.register(157, "prctl") { f, p throws(LinuxError) in
            switch f.a0 {
            case 15:  // PR_SET_NAME
                p.name = try UserMemory.string(f.a1, limit: 4096)
                return 0
            case 16:  // PR_GET_NAME
                let bytes = Array(p.name.utf8.prefix(15)) + [0]
                let dst = try UserMemory.pointer(f.a1, 16)
                bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                return 0
            default:
                throw LinuxError(.EINVAL)
            }
        }
        // Signal state: recorded so that programs that install handlers start; delivery
        // of application signals is not implemented yet.
        d.register(13, "rt_sigaction") { f, p throws(LinuxError) in
            guard f.a3 == 8, f.a0 >= 1, f.a0 <= 64 else { throw LinuxError(.EINVAL) }
            var new: (UInt64, UInt64, UInt64, UInt64)?
            if f.a1 != 0 {
                guard f.a0 != 9, f.a0 != 19 else { throw LinuxError(.EINVAL) }  // SIGKILL, SIGSTOP
                new = (try UserMemory.load(UInt64.self, at: f.a1), try UserMemory.load(UInt64.self, at: f.a1 + 8),
                       try UserMemory.load(UInt64.self, at: f.a1 + 16), try UserMemory.load(UInt64.self, at: f.a1 + 24))
            }
            if f.a2 != 0 { _ = try UserMemory.pointer(f.a2, 32) }
            let old = p.exchangeAction(Int(f.a0), new)
            if f.a2 != 0 {
                try UserMemory.store(old.0, at: f.a2); try UserMemory.store(old.1, at: f.a2 + 8)
                try UserMemory.store(old.2, at: f.a2 + 16); try UserMemory.store(old.3, at: f.a2 + 24)
            }
            return 0
        }
        let kill: SyscallHandler = { f, p throws(LinuxError) in
            // kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig): within this instance.
            let target = Int32(truncatingIfNeeded: f.a0)
            let sig = Int32(truncatingIfNeeded: f.number == 234 ? f.a2 : f.a1)
            guard sig >= 0, sig <= 64 else { throw LinuxError(.EINVAL) }
            // kill(-1) signals every other process the caller may signal: none in here.
            if f.number == 62 && target == -1 { return 0 }
            guard target == p.pid || target == 0 || f.number != 62 else { throw LinuxError(.ESRCH) }
            if sig == 0 { return 0 }
            let code: Int32 = f.number == 62 ? 0 : -6  // SI_USER, SI_TKILL
            if p.pendIfBlocked(sig, code: code) { return 0 }
            return try act(on: sig, code: code, result: 0, f, p)
        }
        d.register(62, "kill", kill)
        d.register(200, "tkill", kill)
        d.register(234, "tgkill", kill)
        d.register(14, "rt_sigprocmask") { f, p throws(LinuxError) in
            guard f.a3 == 8 else { throw LinuxError(.EINVAL) }
            let set: UInt64? = f.a1 == 0 ? nil : try UserMemory.load(UInt64.self, at: f.a1)
            if f.a2 != 0 { _ = try UserMemory.pointer(f.a2, 8) }
            let old = try p.changeMask(how: f.a0, set: set)
            if f.a2 != 0 { try UserMemory.store(old, at: f.a2) }
            // A signal that just became unblocked is delivered as this call returns.
            if let (sig, code) = p.takeDeliverable() { return try act(on: sig, code: code, result: 0, f, p) }
            return 0
        }
        d.register(131, "sigaltstack") { f, _ throws(LinuxError) in
            if f.a1 != 0 {
                try UserMemory.store(UInt64(0), at: f.a1)
                try UserMemory.store(Int32(2) /* SS_DISABLE */, at: f.a1 + 8)
                try UserMemory.store(UInt64(0), at: f.a1 + 16)
            }
            return 0
        }
    }
}
