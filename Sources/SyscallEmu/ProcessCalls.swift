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
        registerSockets(d)
        registerSelect(d); registerTimerFD(d); registerSignalFD(d)
        registerEpoll(d)
        registerExec(d)
        registerLimits(d)
        registerCompatibility(d)
        registerFork(d)
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
            if flags & MAP_FIXED != 0 && flags & 0x100000 /* MAP_FIXED_NOREPLACE */ == 0 {
                try refuseForeign(p, f.a0, f.a1, "mmap(MAP_FIXED)", .ENOMEM)
            }
            let r = cj_host_syscall(9, f.a0, f.a1, f.a2, f.a3, UInt64(bitPattern: fd), f.a5)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if let range = AddressSpace.pageRange(UInt64(bitPattern: r), f.a1) { p.addressSpace.add(range) }
            if f.a2 & UInt64(PROT_EXEC) != 0 || flags & MAP_FIXED != 0 { cj_mappings_changed() }  // the rewriter's maps
            return r
        }
        d.register(10, "mprotect") { f, p throws(LinuxError) in
            try refuseForeign(p, f.a0, f.a1, "mprotect", .ENOMEM)
            let r = cj_host_syscall(10, f.a0, f.a1, f.a2, 0, 0, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            cj_mappings_changed()
            return r
        }
        d.register(11, "munmap") { f, p throws(LinuxError) in
            try refuseForeign(p, f.a0, f.a1, "munmap", .EINVAL)
            let r = cj_host_syscall(11, f.a0, f.a1, 0, 0, 0, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if let range = AddressSpace.pageRange(f.a0, f.a1) { p.addressSpace.remove(range) }
            cj_mappings_changed()
            return r
        }
        d.register(25, "mremap") { f, p throws(LinuxError) in
            try refuseForeign(p, f.a0, f.a1, "mremap", .EFAULT)
            if f.a3 & 2 != 0 { try refuseForeign(p, f.a4, f.a2, "mremap(MREMAP_FIXED)", .EINVAL) }  // MREMAP_FIXED
            let r = cj_host_syscall(25, f.a0, f.a1, f.a2, f.a3, f.a4, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if let old = AddressSpace.pageRange(f.a0, f.a1) { p.addressSpace.remove(old) }
            if let new = AddressSpace.pageRange(UInt64(bitPattern: r), f.a2) { p.addressSpace.add(new) }
            cj_mappings_changed()
            return r
        }
        host(26, "msync", d)
        host(27, "mincore", d)
        host(28, "madvise", d)
    }

    /// Refuses a memory operation over pages that are neither the program's (its book and
    /// break) nor free: the libOS's own code, heap, stacks and rings, which the program
    /// cannot see in its /proc/self/maps. Logged once per operation. The common case (all
    /// of the range is the program's) costs one lookup; the rest reads the host's maps.
    static func refuseForeign(_ p: LinuxProcess, _ address: UInt64, _ length: UInt64, _ what: String,
                              _ code: LinuxError.Code) throws(LinuxError) {
        let start = address & ~4095
        let (size, o1) = length.addingReportingOverflow(address - start + 4095)
        guard length > 0, !o1, UserMemory.isPlausible(start, 1) else { return }  // the host answers these
        let (end, o2) = start.addingReportingOverflow(size & ~4095)
        guard !o2 else { return }
        if p.addressSpace.contains(start, end) { return }
        let heap = p.programBreak.heap
        let gaps = p.addressSpace.gaps(in: start..<end).flatMap { g -> [Range<UInt64>] in
            guard g.overlaps(heap) else { return [g] }
            return [g.lowerBound..<max(g.lowerBound, heap.lowerBound), min(g.upperBound, heap.upperBound)..<g.upperBound].filter { !$0.isEmpty }
        }
        guard !gaps.isEmpty else { return }
        for line in ProcFS.hostLines("/proc/self/maps") {
            let bounds = line.prefix { $0 != " " }.split(separator: "-")
            guard bounds.count == 2, let lo = UInt64(bounds[0], radix: 16), let hi = UInt64(bounds[1], radix: 16) else { continue }
            if let g = gaps.first(where: { $0.overlaps(lo..<hi) }) {
                if foreignLock.withLock({ foreignReported.insert(what).inserted }) {
                    Dispatcher.log(level: .error, "junction: the program's \(what) at 0x\(String(g.lowerBound, radix: 16)) would reach the library OS's own memory: refused (\(code))")
                }
                throw LinuxError(code)
            }
        }
    }

    static let foreignLock = SpinLock()
    @exclusivity(unchecked) nonisolated(unsafe) static var foreignReported = Set<String>()  // guarded by foreignLock

    /// A sleep a signal ends with EINTR (the time left stored at `remaining` when
    /// nonzero); an interruption with nothing to deliver sleeps on.
    static func sleep(_ p: LinuxProcess, until deadline: MonotonicInstant, remaining: UInt64) throws(LinuxError) {
        while UThread.sleep(until: deadline) == .interrupted {
            guard let t = AppThread.current, p.signals.hasDeliverable(for: t) else { continue }
            if remaining != 0 {
                let left = max(0, deadline.nanoseconds - MonotonicInstant.now.nanoseconds)
                try UserMemory.store(left / 1_000_000_000, at: remaining)
                try UserMemory.store(left % 1_000_000_000, at: remaining + 8)
            }
            throw LinuxError(.EINTR)
        }
    }

    static func registerProcess(_ d: Dispatcher) {
        d.register(231, "exit_group") { f, p throws(LinuxError) in p.exitGroup(Int32(truncatingIfNeeded: f.a0)) }
        d.register(39, "getpid") { _, p throws(LinuxError) in Int64(p.pid) }
        // Credentials and uname: the instance's own (CompatibilityCalls.swift).
        for (nr, name) in [(110, "getppid"), (111, "getpgrp"), (121, "getpgid"), (124, "getsid"),
                           (318, "getrandom"), (99, "sysinfo"),
                           (229, "clock_getres"), (96, "gettimeofday"), (201, "time"),
                           (100, "times"), (98, "getrusage"), (309, "getcpu")] {
            host(nr, name, d)
        }
        // Through the vDSO, as glibc's own wrapper: the host call costs ~2x a native one
        // (its own kernel entry on top of the interception). Same answers and errors: an
        // unknown clock EINVAL before the result is stored, then EFAULT for a bad pointer.
        d.register(228, "clock_gettime") { f, _ throws(LinuxError) in
            var ts = timespec()
            if clock_gettime(clockid_t(truncatingIfNeeded: f.a0), &ts) != 0 { throw LinuxError(Errno(rawValue: errno)) }
            try UserMemory.store(ts, at: f.a1)
            return 0
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
        d.register(35, "nanosleep") { f, p throws(LinuxError) in
            let sec = try UserMemory.load(Int64.self, at: f.a0), nsec = try UserMemory.load(Int64.self, at: f.a0 + 8)
            guard sec >= 0, nsec >= 0, nsec < 1_000_000_000 else { throw LinuxError(.EINVAL) }
            try sleep(p, until: MonotonicInstant.now.advanced(by: .seconds(sec) + .nanoseconds(nsec)), remaining: f.a1)
            return 0
        }
        d.register(230, "clock_nanosleep") { f, p throws(LinuxError) in
            let sec = try UserMemory.load(Int64.self, at: f.a2), nsec = try UserMemory.load(Int64.self, at: f.a2 + 8)
            guard sec >= 0, nsec >= 0, nsec < 1_000_000_000 else { throw LinuxError(.EINVAL) }
            let clock = clockid_t(truncatingIfNeeded: f.a0)
            // The wall and monotonic clocks; CPU-time clocks are not slept on here.
            guard [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI].contains(clock) else { throw LinuxError(.EINVAL) }
            let deadline: MonotonicInstant
            if f.a1 & 1 != 0 {  // TIMER_ABSTIME: converted to the monotonic clock once
                var now = timespec()
                clock_gettime(clock, &now)
                let delta = (sec - Int64(now.tv_sec)) * 1_000_000_000 + (nsec - Int64(now.tv_nsec))
                deadline = MonotonicInstant.now.advanced(by: .nanoseconds(max(0, delta)))
            } else {
                deadline = MonotonicInstant.now.advanced(by: .seconds(sec) + .nanoseconds(nsec))
            }
            try sleep(p, until: deadline, remaining: f.a1 & 1 != 0 ? 0 : f.a3)
            return 0
        }
        d.register(157, "prctl") { f, p throws(LinuxError) in
            switch f.a0 {
            case 15:  // PR_SET_NAME
                p.name = try UserMemory.string(f.a1, limit: 4096)
                return 0
            case 1:  // PR_SET_PDEATHSIG: the host's (this is a host process)
                guard f.a1 <= 64 else { throw LinuxError(.EINVAL) }
                p.deathSignal = Int32(f.a1)
                return try hostCall(157, 1, f.a1)
            case 2:  // PR_GET_PDEATHSIG
                try UserMemory.store(p.deathSignal, at: f.a1)
                return 0
            case 16:  // PR_GET_NAME
                let bytes = Array(p.name.utf8.prefix(15)) + [0]
                let dst = try UserMemory.pointer(f.a1, 16, for: .write)
                bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                return 0
            default:
                throw LinuxError(.EINVAL)
            }
        }
    }
}
