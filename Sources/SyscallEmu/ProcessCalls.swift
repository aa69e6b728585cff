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
    static func host(_ nr: SyscallNumber, _ d: Dispatcher) {
        d.register(nr) { f, _ throws(LinuxError) in
            let r = cj_host_syscall(Int64(nr.rawValue), f.a0, f.a1, f.a2, f.a3, f.a4, f.a5)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            return r
        }
    }

    static func registerMemory(_ d: Dispatcher) {
        // brk(0) (or any address it cannot move to) returns the current break.
        d.register(.brk) { f, p throws(LinuxError) in Int64(bitPattern: p.programBreak.move(to: f.a0)) }
        d.register(.mmap) { f, p throws(LinuxError) in
            let flags = Int32(truncatingIfNeeded: f.a3)
            var fd = Int64(bitPattern: f.a4)
            guard f.a5 & 4095 == 0 else { throw LinuxError(.EINVAL) }  // Linux: the offset before the descriptor
            if flags & MAP_ANONYMOUS == 0 {
                // A file mapping: map the host file behind the descriptor.
                let file = try p.fd(f.a4)
                guard !file.flags.contains(.path) else { throw LinuxError(.EBADF) }
                guard let host = file.handle.hostDescriptor else { try refuseUnmappable(file, length: f.a1, prot: f.a2, flags: flags) }
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
        d.register(.mprotect) { f, p throws(LinuxError) in
            try refuseForeign(p, f.a0, f.a1, "mprotect", .ENOMEM)
            let r = cj_host_syscall(10, f.a0, f.a1, f.a2, 0, 0, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            cj_mappings_changed()
            return r
        }
        d.register(.munmap) { f, p throws(LinuxError) in
            try refuseForeign(p, f.a0, f.a1, "munmap", .EINVAL)
            let r = cj_host_syscall(11, f.a0, f.a1, 0, 0, 0, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if let range = AddressSpace.pageRange(f.a0, f.a1) { p.addressSpace.remove(range) }
            cj_mappings_changed()
            return r
        }
        d.register(.mremap) { f, p throws(LinuxError) in
            // Linux: the flags, the address's alignment and the new length before the range.
            let flags = f.a3
            guard flags & ~7 == 0, flags & 2 == 0 || flags & 1 != 0,  // FIXED needs MAYMOVE
                  flags & 4 == 0 || (flags & 1 != 0 && f.a1 == f.a2),  // DONTUNMAP: MAYMOVE, same length
                  f.a0 & 4095 == 0, (f.a2 &+ 4095) & ~4095 != 0,
                  f.a2 <= (1 << 47) - 4096 else { throw LinuxError(.EINVAL) }  // a new length past TASK_SIZE
            // An old length past TASK_SIZE: EFAULT where nothing is mapped, EINVAL past a mapping.
            if (f.a1 &+ 4095) & ~4095 > (1 << 47) - 4096 {
                throw LinuxError(p.addressSpace.contains(f.a0, f.a0 + 1) ? .EINVAL : .EFAULT)
            }
            try refuseForeign(p, f.a0, f.a1, "mremap", .EFAULT)
            if f.a3 & 2 != 0 { try refuseForeign(p, f.a4, f.a2, "mremap(MREMAP_FIXED)", .EINVAL) }  // MREMAP_FIXED
            let r = cj_host_syscall(25, f.a0, f.a1, f.a2, f.a3, f.a4, 0)
            if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            if let old = AddressSpace.pageRange(f.a0, f.a1) { p.addressSpace.remove(old) }
            if let new = AddressSpace.pageRange(UInt64(bitPattern: r), f.a2) { p.addressSpace.add(new) }
            cj_mappings_changed()
            return r
        }
        host(.msync, d)
        host(.mincore, d)
        host(.madvise, d)
    }

    /// do_mmap's checks, in Linux's order, for a file the host cannot map (a pipe, an
    /// eventfd or epoll, a /dev device, a MemFS file): a zero or overflowing length, the
    /// map type and the descriptor's modes, exec on a pseudo file system's inode (noexec:
    /// EPERM), then ENODEV as for a file with no mmap.
    static func refuseUnmappable(_ file: OpenFile, length: UInt64, prot: UInt64, flags: Int32) throws(LinuxError) -> Never {
        if length == 0 { throw LinuxError(.EINVAL) }
        let aligned = (length &+ 4095) & ~4095
        if aligned == 0 || aligned > (1 << 47) - 4096 { throw LinuxError(.ENOMEM) }
        switch flags & 0xf {  // MAP_TYPE
        case 1, 3:  // MAP_SHARED, MAP_SHARED_VALIDATE
            if prot & UInt64(PROT_WRITE) != 0 && !file.flags.canWrite { throw LinuxError(.EACCES) }
        case 2: break  // MAP_PRIVATE
        default: throw LinuxError(.EINVAL)
        }
        if !file.flags.canRead { throw LinuxError(.EACCES) }
        if prot & UInt64(PROT_EXEC) != 0 && file.location.node is AnonymousNode { throw LinuxError(.EPERM) }
        throw LinuxError(.ENODEV)
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
        d.register(.exit_group) { f, p throws(LinuxError) in p.exitGroup(Int32(truncatingIfNeeded: f.a0)) }
        // Also answered by the entry code itself from rewritten sites (a leaf call).
        d.registerLeaf(.getpid) { _, p throws(LinuxError) in Int64(p.pid) }
        // Credentials and uname: the instance's own (CompatibilityCalls.swift).
        for nr: SyscallNumber in [.getppid, .getpgrp, .getpgid, .getsid,
                                  .getrandom, .sysinfo,
                                  .clock_getres, .gettimeofday, .time,
                                  .times, .getrusage, .getcpu] {
            host(nr, d)
        }
        // Through the vDSO, as glibc's own wrapper: the host call costs ~2x a native one
        // (its own kernel entry on top of the interception). Same answers and errors: an
        // unknown clock EINVAL before the result is stored, then EFAULT for a bad pointer.
        // From rewritten sites, the clocks the vDSO keeps are a leaf call (syscall_entry.S).
        d.registerLeaf(.clock_gettime) { f, _ throws(LinuxError) in
            var ts = timespec()
            if clock_gettime(clockid_t(truncatingIfNeeded: f.a0), &ts) != 0 { throw LinuxError(Errno(rawValue: errno)) }
            try UserMemory.store(ts, at: f.a1)
            return 0
        }
        d.register(.arch_prctl) { f, _ throws(LinuxError) in
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
        d.register(.set_robust_list) { f, _ throws(LinuxError) in
            guard f.a1 == 24 else { throw LinuxError(.EINVAL) }
            return 0
        }
        // rseq is per kernel thread, and uthreads share kthreads: say it is not there,
        // which glibc handles.
        d.register(.rseq) { _, _ throws(LinuxError) in throw LinuxError(.ENOSYS) }
        d.register(.sched_yield) { _, _ throws(LinuxError) in
            UThread.yield()
            return 0
        }
        d.register(.nanosleep) { f, p throws(LinuxError) in
            try sleep(p, until: try UserTimespec.loadValid(at: f.a0).deadlineFromNow, remaining: f.a1)
            return 0
        }
        d.register(.clock_nanosleep) { f, p throws(LinuxError) in
            // Linux: a clock number that names no clock (EINVAL), a clock that cannot be
            // slept on (EOPNOTSUPP), then the time (EFAULT, EINVAL), then the clock's own
            // refusals (a CPU-time clock id with a bad pid or kind: EINVAL).
            let clock = clockid_t(truncatingIfNeeded: f.a0)
            if clock >= 12 || clock == 10 { throw LinuxError(.EINVAL) }  // no k_clock there
            if clock == CLOCK_MONOTONIC_RAW || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_MONOTONIC_COARSE {
                throw LinuxError(.EOPNOTSUPP)
            }
            let time = try UserTimespec.loadValid(at: f.a2)
            // The wall and monotonic clocks; CPU-time clocks are not slept on here.
            guard [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI].contains(clock) else { throw LinuxError(.EINVAL) }
            let deadline: MonotonicInstant
            if f.a1 & 1 != 0 {  // TIMER_ABSTIME: converted to the monotonic clock once
                var now = timespec()
                clock_gettime(clock, &now)
                let delta = time.totalNanoseconds &- (Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))
                deadline = MonotonicInstant.now.advanced(by: .nanoseconds(max(0, delta)))
            } else {
                deadline = time.deadlineFromNow
            }
            try sleep(p, until: deadline, remaining: f.a1 & 1 != 0 ? 0 : f.a3)
            return 0
        }
        d.register(.prctl) { f, p throws(LinuxError) in
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
