// PrivilegeCalls.swift: calls answered for the instance as a whole: System V IPC,
// I/O priorities, memory policy and resource limits are the host process's (the
// instance is one process); calls that would act on the machine (reboot, modules,
// mounts, swap, port I/O, accounting, kexec, ptrace of others) get EPERM, as in an
// unprivileged container, since an instance holds no host privilege; sched_setattr
// and sched_getattr over the recorded policy; fchmodat2 and the old utime calls.
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    static func registerPrivileged(_ d: Dispatcher) {
        // System V IPC objects are host objects shared with other processes, as they
        // are between Linux processes. A blocking semop/msgsnd/msgrcv holds its kthread.
        for nr: SyscallNumber in [.shmget, .shmat, .shmctl, .shmdt, .semget, .semop,
                                  .semctl, .semtimedop, .msgget, .msgsnd, .msgrcv, .msgctl,
                                  .ioprio_set, .ioprio_get, .mbind, .set_mempolicy,
                                  .get_mempolicy, .sysfs, .ustat,
                                  .remap_file_pages, .mseal] {
            host(nr, d)
        }
        for nr: SyscallNumber in [.reboot, .swapon, .swapoff, .iopl, .ioperm,
                                  .init_module, .finit_module, .delete_module, .kexec_load,
                                  .kexec_file_load, .acct, .pivot_root, .mount, .umount2,
                                  .quotactl, .vhangup, .ptrace, .syslog] {
            d.register(nr) { _, _ throws(LinuxError) in throw LinuxError(.EPERM) }
        }
        d.register(.sched_getattr) { f, p throws(LinuxError) in
            guard f.a1 != 0, f.a2 >= 48, f.a2 <= 4096, f.a3 == 0 else { throw LinuxError(.EINVAL) }
            guard try schedSelf(f.a0, p) else { return try hostCall(315, f.a0, f.a1, f.a2, f.a3) }
            let (policy, priority, nice) = p.compat.lock.withLock { (p.compat.policy, p.compat.priority, p.compat.nice) }
            let out = try UserMemory.pointer(f.a1, 56, for: .write)
            out.initializeMemory(as: UInt8.self, repeating: 0, count: min(Int(f.a2), 56))
            out.storeBytes(of: UInt32(min(f.a2, 56)), toByteOffset: 0, as: UInt32.self)  // size
            out.storeBytes(of: UInt32(bitPattern: policy), toByteOffset: 4, as: UInt32.self)
            out.storeBytes(of: nice, toByteOffset: 16, as: Int32.self)
            out.storeBytes(of: UInt32(bitPattern: priority), toByteOffset: 20, as: UInt32.self)
            return 0
        }
        d.register(.sched_setattr) { f, p throws(LinuxError) in
            guard f.a1 != 0, f.a2 == 0 else { throw LinuxError(.EINVAL) }
            let size = try UserMemory.load(UInt32.self, at: f.a1)
            guard size == 0 || size >= 48 else { throw LinuxError(rawCode: 7) }  // E2BIG
            let policy = try UserMemory.load(Int32.self, at: f.a1 + 4)
            let flags = try UserMemory.load(UInt64.self, at: f.a1 + 8)
            let nice = try UserMemory.load(Int32.self, at: f.a1 + 16)
            let priority = try UserMemory.load(Int32.self, at: f.a1 + 20)
            guard flags & ~UInt64(0x7f) == 0 else { throw LinuxError(.EINVAL) }
            guard try schedSelf(f.a0, p) else { return try hostCall(314, f.a0, f.a1, f.a2) }
            guard let range = priorityRange(policy), policy != schedDeadline, range.contains(priority) else { throw LinuxError(.EINVAL) }
            if (policy == schedFIFO || policy == schedRR) && !p.compat.privileged { throw LinuxError(.EPERM) }
            try p.compat.lock.withLock { () throws(LinuxError) in
                let n = min(19, max(-20, nice))
                if n < p.compat.nice && p.compat.uids.1 != 0 { throw LinuxError(.EPERM) }
                p.compat.policy = policy
                p.compat.priority = priority
                if policy == schedOther || policy == schedBatch { p.compat.nice = n }
            }
            return 0
        }
        d.register(.fchmodat2) { f, p throws(LinuxError) in
            guard f.a3 & ~(atSymlinkNoFollow | atEmptyPath) == 0 else { throw LinuxError(.EINVAL) }
            let path = try UserMemory.string(f.a1)
            if path.isEmpty && f.a3 & atEmptyPath != 0 {
                let file = try p.fd(f.a0)
                try fsCall { () throws(Errno) in try p.fs.changeMode(file.location, mode: UInt32(truncatingIfNeeded: f.a2) & 0o7777) }
                return 0
            }
            let base = try p.base(f.a0)
            let follow = f.a3 & atSymlinkNoFollow == 0
            let loc = try fsCall { () throws(Errno) in try p.fs.resolve(path, at: base, followSymlinks: follow) }
            if loc.node.kind == .symlink { throw LinuxError(.EOPNOTSUPP) }  // symlinks have no mode to change
            try fsCall { () throws(Errno) in try p.fs.changeMode(loc, mode: UInt32(truncatingIfNeeded: f.a2) & 0o7777) }
            return 0
        }
        // utime(path, {actime, modtime}), utimes and futimesat (struct timeval[2]).
        d.register(.utime) { f, p throws(LinuxError) in
            var times: [Timespec?] = [.now, .now]
            if f.a1 != 0 {
                times = [Timespec(seconds: try UserMemory.load(Int64.self, at: f.a1), nanoseconds: 0),
                         Timespec(seconds: try UserMemory.load(Int64.self, at: f.a1 + 8), nanoseconds: 0)]
            }
            return try setTimes(p, base: nil, path: f.a0, times, explicit: f.a1 != 0)
        }
        let timeval: SyscallHandler = { f, p throws(LinuxError) in
            let (dirfd, path, tv) = f.number == SyscallNumber.utimes.rawValue ? (UInt64(bitPattern: Int64(atFDCWD)), f.a0, f.a1) : (f.a0, f.a1, f.a2)
            var times: [Timespec?] = [.now, .now]
            if tv != 0 {
                times = []
                for i in 0..<2 {
                    let sec = try UserMemory.load(Int64.self, at: tv + UInt64(16 * i))
                    let usec = try UserMemory.load(Int64.self, at: tv + UInt64(16 * i + 8))
                    guard usec >= 0, usec < 1_000_000 else { throw LinuxError(.EINVAL) }
                    times.append(Timespec(seconds: sec, nanoseconds: usec * 1000))
                }
            }
            return try setTimes(p, base: try p.base(dirfd), path: path, times, explicit: tv != 0)
        }
        d.register(.utimes, timeval)
        d.register(.futimesat, timeval)
    }

    static func setTimes(_ p: LinuxProcess, base: Location?, path address: UInt64, _ times: [Timespec?],
                         explicit: Bool) throws(LinuxError) -> Int64 {
        let path = try UserMemory.string(address)
        try fsCall { () throws(Errno) in
            try p.fs.updateTimes(path, access: times[0], modification: times[1], explicit: explicit, at: base)
        }
        return 0
    }
}
