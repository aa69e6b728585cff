// SchedulingCalls.swift: scheduling policy, priorities, nice values and CPU affinity as
// the process asked for them. Application threads are uthreads that move between
// kthreads, so these are recorded and reported (with Linux's checks and errnos), not
// applied to host threads. Another process's (a forked child, the parent outside the
// instance) are the host's to answer, as they are host processes.
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    static let schedOther: Int32 = 0, schedFIFO: Int32 = 1, schedRR: Int32 = 2, schedBatch: Int32 = 3
    static let schedIdle: Int32 = 5, schedDeadline: Int32 = 6, schedResetOnFork: Int32 = 0x4000_0000

    static func priorityRange(_ policy: Int32) -> ClosedRange<Int32>? {
        switch policy {
        case schedFIFO, schedRR: 1...99
        case schedOther, schedBatch, schedIdle, schedDeadline: 0...0
        default: nil
        }
    }

    /// Whether the pid argument of a sched_* call names this process (else the host
    /// answers for it); negative is EINVAL for the calls that check it first, as Linux
    /// (the affinity calls look it up: ESRCH from the host).
    static func schedSelf(_ v: UInt64, _ p: LinuxProcess) throws(LinuxError) -> Bool {
        let pid = Int32(truncatingIfNeeded: v)
        guard pid >= 0 else { throw LinuxError(.EINVAL) }
        return isSelf(pid, p)
    }

    static func registerScheduling(_ d: Dispatcher) {
        d.register(.sched_get_priority_max) { f, _ throws(LinuxError) in
            guard let r = priorityRange(Int32(truncatingIfNeeded: f.a0)) else { throw LinuxError(.EINVAL) }
            return Int64(r.upperBound)
        }
        d.register(.sched_get_priority_min) { f, _ throws(LinuxError) in
            guard let r = priorityRange(Int32(truncatingIfNeeded: f.a0)) else { throw LinuxError(.EINVAL) }
            return Int64(r.lowerBound)
        }
        d.register(.sched_getscheduler) { f, p throws(LinuxError) in
            guard try schedSelf(f.a0, p) else { return try hostCall(145, f.a0) }
            return Int64(p.compat.lock.withLock { p.compat.policy })
        }
        d.register(.sched_getparam) { f, p throws(LinuxError) in
            guard f.a1 != 0 else { throw LinuxError(.EINVAL) }
            guard try schedSelf(f.a0, p) else { return try hostCall(143, f.a0, f.a1) }
            try UserMemory.store(p.compat.lock.withLock { p.compat.priority }, at: f.a1)
            return 0
        }
        d.register(.sched_setscheduler) { f, p throws(LinuxError) in
            try setScheduler(p, pid: f.a0, policy: Int32(truncatingIfNeeded: f.a1), param: f.a2)
        }
        d.register(.sched_setparam) { f, p throws(LinuxError) in
            try setScheduler(p, pid: f.a0, policy: -1, param: f.a1)
        }
        d.register(.sched_rr_get_interval) { f, p throws(LinuxError) in
            let own = try schedSelf(f.a0, p)
            _ = try UserMemory.pointer(f.a1, 16, for: .write)
            return try hostCall(148, own ? 0 : f.a0, f.a1)
        }
        d.register(.sched_setaffinity) { f, p throws(LinuxError) in
            guard isSelf(Int32(truncatingIfNeeded: f.a0), p) else { return try hostCall(203, f.a0, f.a1, f.a2) }
            let length = Int(clamping: f.a1)
            let requested = Array(try UserMemory.buffer(f.a2, length, for: .read))
            // The CPUs this process may use: a mask with none of them is EINVAL.
            var online = [UInt8](repeating: 0, count: 1024)
            let n = online.withUnsafeMutableBytes { cj_host_syscall(204, 0, 1024, UInt64(UInt(bitPattern: $0.baseAddress!)), 0, 0, 0) }
            guard n > 0 else { throw LinuxError(.EINVAL) }
            let usable = (0..<min(Int(n), requested.count)).contains { requested[$0] & online[$0] != 0 }
            guard usable else { throw LinuxError(.EINVAL) }
            p.compat.lock.withLock { p.compat.affinity = Array(online[0..<Int(n)].enumerated().map { i, b in i < requested.count ? b & requested[i] : 0 }) }
            return 0
        }
        d.register(.sched_getaffinity) { f, p throws(LinuxError) in
            guard isSelf(Int32(truncatingIfNeeded: f.a0), p) else { return try hostCall(204, f.a0, f.a1, f.a2) }
            let n = try hostCall(204, 0, f.a1, f.a2)
            if let mask = p.compat.lock.withLock({ p.compat.affinity }) {
                let out = try UserMemory.pointer(f.a2, Int(n), for: .write)
                for i in 0..<Int(n) { out.storeBytes(of: i < mask.count ? mask[i] : 0, toByteOffset: i, as: UInt8.self) }
            }
            return n
        }
        d.register(.getpriority) { f, p throws(LinuxError) in
            guard try priorityTargetIsSelf(f.a0, f.a1, p) else { return try hostCall(140, f.a0, f.a1) }
            return Int64(20 - p.compat.lock.withLock { p.compat.nice })
        }
        d.register(.setpriority) { f, p throws(LinuxError) in
            guard try priorityTargetIsSelf(f.a0, f.a1, p) else { return try hostCall(141, f.a0, f.a1, f.a2) }
            let nice = min(19, max(-20, Int32(truncatingIfNeeded: f.a2)))
            try p.compat.lock.withLock { () throws(LinuxError) in
                // A lower nice value needs CAP_SYS_NICE (can_nice: EACCES).
                if nice < p.compat.nice && p.compat.uids.1 != 0 { throw LinuxError(.EACCES) }
                p.compat.nice = nice
            }
            return 0
        }
    }

    static func setScheduler(_ p: LinuxProcess, pid: UInt64, policy requested: Int32, param: UInt64) throws(LinuxError) -> Int64 {
        guard param != 0, Int32(truncatingIfNeeded: pid) >= 0 else { throw LinuxError(.EINVAL) }
        let priority = try UserMemory.load(Int32.self, at: param)
        guard try schedSelf(pid, p) else { return try hostCall(requested < 0 ? 142 : 144, pid, requested < 0 ? param : UInt64(UInt32(bitPattern: requested)), param) }
        let policy = requested < 0 ? p.compat.lock.withLock { p.compat.policy } : requested & ~schedResetOnFork
        guard let range = priorityRange(policy), policy != schedDeadline, range.contains(priority) else { throw LinuxError(.EINVAL) }
        if (policy == schedFIFO || policy == schedRR) && !p.compat.privileged { throw LinuxError(.EPERM) }
        p.compat.lock.withLock {
            p.compat.policy = policy
            p.compat.priority = priority
        }
        return 0
    }

    /// Whether getpriority/setpriority's (which, who) is answered by this process's own
    /// record: PRIO_PROCESS naming it, PRIO_PGRP its group, PRIO_USER its user; other
    /// processes, groups and users are the host's (ESRCH there when there is none).
    static func priorityTargetIsSelf(_ which: UInt64, _ who: UInt64, _ p: LinuxProcess) throws(LinuxError) -> Bool {
        let w = Int32(truncatingIfNeeded: who)
        switch which {
        case 0: return isSelf(w, p)
        case 1: return w == 0 || w == getpgrp()
        case 2: return w == 0 || UInt32(bitPattern: w) == p.compat.lock.withLock({ p.compat.uids.0 })
        default: throw LinuxError(.EINVAL)
        }
    }
}
