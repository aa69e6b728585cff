// LimitCalls.swift: RLIMIT_NOFILE as the program sees it (getrlimit, setrlimit, prlimit64):
// the descriptor table's own limit, since the host process's limit is raised at start.
// Every other resource, and other processes, go to the host unchanged.
import CJunction
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Tunables: the kernel's resource numbers and RLIM_INFINITY.
    static let rlimitNoFile: UInt64 = 7, rlimitCount: UInt64 = 16
    static let rlimInfinity: UInt64 = ~0

    static func registerLimits(_ d: Dispatcher) {
        d.register(.getrlimit) { f, p throws(LinuxError) in
            guard f.a0 == rlimitNoFile else { return try forward(97, f) }
            try storeNoFile(p, at: f.a1)
            return 0
        }
        d.register(.setrlimit) { f, p throws(LinuxError) in
            guard f.a0 == rlimitNoFile else { return try forward(160, f) }
            let soft = try UserMemory.load(UInt64.self, at: f.a1)
            let hard = try UserMemory.load(UInt64.self, at: f.a1 + 8)
            try setNoFile(p, soft: soft, hard: hard)
            return 0
        }
        d.register(.prlimit64) { f, p throws(LinuxError) in
            let pid = Int32(truncatingIfNeeded: f.a0)
            guard f.a1 == rlimitNoFile, pid == 0 || pid == p.pid else { return try forward(302, f) }
            // Linux reads the new limit first (EFAULT), then sets it, then writes the old one.
            var new: (UInt64, UInt64)?
            if f.a2 != 0 { new = (try UserMemory.load(UInt64.self, at: f.a2), try UserMemory.load(UInt64.self, at: f.a2 + 8)) }
            let old = noFile(p)
            if let new { try setNoFile(p, soft: new.0, hard: new.1) }
            if f.a3 != 0 {
                try UserMemory.store(old.soft, at: f.a3)
                try UserMemory.store(old.hard, at: f.a3 + 8)
            }
            return 0
        }
    }

    static func forward(_ nr: Int64, _ f: SyscallFrame) throws(LinuxError) -> Int64 {
        let r = cj_host_syscall(nr, f.a0, f.a1, f.a2, f.a3, f.a4, f.a5)
        if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
        return r
    }

    /// The program's RLIMIT_NOFILE: the table's soft limit, the host's hard one.
    static func noFile(_ p: LinuxProcess) -> (soft: UInt64, hard: UInt64) {
        let hard = DescriptorTable.hostLimits().hard
        let w = { (v: Int32) -> UInt64 in v == Int32.max ? rlimInfinity : UInt64(v) }
        return (w(p.descriptors.limit), w(hard))
    }

    static func storeNoFile(_ p: LinuxProcess, at address: UInt64) throws(LinuxError) {
        let l = noFile(p)
        try UserMemory.store(l.soft, at: address)
        try UserMemory.store(l.hard, at: address + 8)
    }

    /// setrlimit(RLIMIT_NOFILE): EINVAL for soft > hard; a new hard limit goes to the host
    /// (which says EPERM past fs.nr_open or without the privilege), whose soft limit then
    /// follows it up so the libOS keeps its headroom.
    static func setNoFile(_ p: LinuxProcess, soft: UInt64, hard: UInt64) throws(LinuxError) {
        guard soft <= hard else { throw LinuxError(.EINVAL) }
        let current = noFile(p)
        if hard != current.hard {
            var r = rlimit(rlim_cur: rlim_t(hard), rlim_max: rlim_t(hard))
            if setrlimit(RLIMIT_NOFILE_VALUE, &r) != 0 { throw LinuxError(Errno(rawValue: errno)) }
        }
        p.descriptors.limit = soft >= UInt64(Int32.max) ? Int32.max : Int32(soft)
    }
}
