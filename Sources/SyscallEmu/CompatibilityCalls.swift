// CompatibilityCalls.swift: identity (the set*id family, groups), capabilities, host
// and domain names, chroot, clock_settime, protection keys, and the calls forwarded to
// the host because the host process is the instance (mlock, membarrier, personality).
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Per-process state of the calls in this file and SchedulingCalls.swift.
final class CompatibilityState: @unchecked Sendable {
    let lock = SpinLock()
    // real, effective, saved, file-system ids (credentials(7)).
    var uids: (UInt32, UInt32, UInt32, UInt32)
    var gids: (UInt32, UInt32, UInt32, UInt32)
    var groups: [UInt32]
    /// sethostname/setdomainname (the instance's own UTS names once set).
    var hostName: [UInt8]?
    var domainName: [UInt8]?
    /// nice (setpriority), scheduling policy and priority, affinity mask.
    var nice: Int32 = 0
    var policy: Int32 = 0
    var priority: Int32 = 0
    var affinity: [UInt8]?
    let timers = PosixTimers()

    init() {
        var u: (UInt32, UInt32, UInt32) = (0, 0, 0), g: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutablePointer(to: &u) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 3) { _ = cj_host_syscall(118, UInt64(UInt(bitPattern: $0)), UInt64(UInt(bitPattern: $0 + 1)), UInt64(UInt(bitPattern: $0 + 2)), 0, 0, 0) }
        }
        withUnsafeMutablePointer(to: &g) { p in
            p.withMemoryRebound(to: UInt32.self, capacity: 3) { _ = cj_host_syscall(120, UInt64(UInt(bitPattern: $0)), UInt64(UInt(bitPattern: $0 + 1)), UInt64(UInt(bitPattern: $0 + 2)), 0, 0, 0) }
        }
        uids = (u.0, u.1, u.2, u.1)
        gids = (g.0, g.1, g.2, g.1)
        let n = getgroups(0, nil)
        var list = [gid_t](repeating: 0, count: Int(max(n, 0)))
        if n > 0 { _ = getgroups(n, &list) }
        groups = list
    }

    var privileged: Bool { lock.withLock { uids.1 == 0 } }
}

extension Handlers {
    /// Forwards to the host and turns -errno into a LinuxError.
    @inline(__always)
    static func hostCall(_ nr: Int, _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0,
                         _ a4: UInt64 = 0, _ a5: UInt64 = 0) throws(LinuxError) -> Int64 {
        let r = cj_host_syscall(Int64(nr), a0, a1, a2, a3, a4, a5)
        if r < 0 && r > -4096 { throw LinuxError(Errno(rawValue: Int32(-r))) }
        return r
    }

    /// Whether `pid` names this process or one of its threads (0: the caller).
    static func isSelf(_ pid: Int32, _ p: LinuxProcess) -> Bool {
        pid == 0 || pid == p.pid || p.signals.thread(tid: pid) != nil
    }

    static func registerCompatibility(_ d: Dispatcher) {
        registerIdentity(d)
        registerSystemNames(d)
        registerScheduling(d)
        registerFileData(d)
        registerSplice(d)
        registerXattr(d)
        registerTimers(d)
        registerMemfd(d)
        registerInotify(d)
        registerPrivileged(d)
        for nr: SyscallNumber in [.mlock, .munlock, .mlockall, .munlockall, .mlock2,
                                  .membarrier, .personality, .adjtimex, .clock_adjtime] {
            host(nr, d)
        }
        // Protection keys live in PKRU, which uthreads sharing a kthread would share:
        // none are offered (pkey_alloc(2): ENOSPC when the system has no keys).
        d.register(.pkey_alloc) { f, _ throws(LinuxError) in
            guard f.a0 == 0, f.a1 & ~UInt64(3) == 0 else { throw LinuxError(.EINVAL) }
            throw LinuxError(rawCode: 28)  // ENOSPC
        }
        d.register(.pkey_free) { _, _ throws(LinuxError) in throw LinuxError(.EINVAL) }
        d.register(.pkey_mprotect) { f, _ throws(LinuxError) in
            guard Int32(truncatingIfNeeded: f.a3) == -1 else { throw LinuxError(.EINVAL) }
            let r = try hostCall(10, f.a0, f.a1, f.a2)
            cj_mappings_changed()  // the rewriter's maps
            return r
        }
        // Another process's memory: there is none in the instance; our own through the host.
        let vm: SyscallHandler = { f, p throws(LinuxError) in
            guard f.a5 == 0 else { throw LinuxError(.EINVAL) }
            guard Int32(truncatingIfNeeded: f.a0) == p.pid else { throw LinuxError(.ESRCH) }
            // Both sides are this address space: only the program's memory.
            for (iov, count) in [(f.a1, f.a2), (f.a3, f.a4)] where count <= 1024 {
                for i in 0..<Int(count) {
                    let base = try UserMemory.load(UInt64.self, at: iov + UInt64(16 * i))
                    let len = try UserMemory.load(UInt64.self, at: iov + UInt64(16 * i + 8))
                    _ = try UserMemory.kernelBuffer(base, Int(clamping: len))
                }
            }
            return try hostCall(f.number, UInt64(getpid()), f.a1, f.a2, f.a3, f.a4, 0)
        }
        d.register(.process_vm_readv, vm)
        d.register(.process_vm_writev, vm)
    }

    // MARK: identity

    static func registerIdentity(_ d: Dispatcher) {
        d.register(.getuid) { _, p throws(LinuxError) in Int64(p.compat.lock.withLock { p.compat.uids.0 }) }
        d.register(.geteuid) { _, p throws(LinuxError) in Int64(p.compat.lock.withLock { p.compat.uids.1 }) }
        d.register(.getgid) { _, p throws(LinuxError) in Int64(p.compat.lock.withLock { p.compat.gids.0 }) }
        d.register(.getegid) { _, p throws(LinuxError) in Int64(p.compat.lock.withLock { p.compat.gids.1 }) }
        d.register(.getresuid) { f, p throws(LinuxError) in
            let (r, e, s, _) = p.compat.lock.withLock { p.compat.uids }
            try UserMemory.store(r, at: f.a0); try UserMemory.store(e, at: f.a1); try UserMemory.store(s, at: f.a2)
            return 0
        }
        d.register(.getresgid) { f, p throws(LinuxError) in
            let (r, e, s, _) = p.compat.lock.withLock { p.compat.gids }
            try UserMemory.store(r, at: f.a0); try UserMemory.store(e, at: f.a1); try UserMemory.store(s, at: f.a2)
            return 0
        }
        d.register(.setresuid) { f, p throws(LinuxError) in try setIDs(p, user: true, f.a0, f.a1, f.a2) }
        d.register(.setresgid) { f, p throws(LinuxError) in try setIDs(p, user: false, f.a0, f.a1, f.a2) }
        d.register(.setuid) { f, p throws(LinuxError) in try setID(p, user: true, f.a0) }
        d.register(.setgid) { f, p throws(LinuxError) in try setID(p, user: false, f.a0) }
        d.register(.setreuid) { f, p throws(LinuxError) in try setReIDs(p, user: true, f.a0, f.a1) }
        d.register(.setregid) { f, p throws(LinuxError) in try setReIDs(p, user: false, f.a0, f.a1) }
        d.register(.setfsuid) { f, p throws(LinuxError) in setFsID(p, user: true, f.a0) }
        d.register(.setfsgid) { f, p throws(LinuxError) in setFsID(p, user: false, f.a0) }
        d.register(.getgroups) { f, p throws(LinuxError) in
            let size = Int32(truncatingIfNeeded: f.a0)
            guard size >= 0 else { throw LinuxError(.EINVAL) }
            let groups = p.compat.lock.withLock { p.compat.groups }
            if size == 0 { return Int64(groups.count) }
            guard Int(size) >= groups.count else { throw LinuxError(.EINVAL) }
            for (i, g) in groups.enumerated() { try UserMemory.store(g, at: f.a1 + UInt64(4 * i)) }
            return Int64(groups.count)
        }
        d.register(.setgroups) { f, p throws(LinuxError) in
            let size = Int(Int32(truncatingIfNeeded: f.a0))
            guard size >= 0, size <= 65536 else { throw LinuxError(.EINVAL) }
            guard p.compat.privileged else { throw LinuxError(.EPERM) }
            var groups: [UInt32] = []
            for i in 0..<size { groups.append(try UserMemory.load(UInt32.self, at: f.a1 + UInt64(4 * i))) }
            groups.sort()
            p.compat.lock.withLock { p.compat.groups = groups }
            p.fs.credentials.groups = groups
            return 0
        }
        // Capabilities: the host process's (the instance is one host process). capset
        // would change only the calling kthread's: a request that changes nothing
        // succeeds, any other is refused.
        d.register(.capget) { f, p throws(LinuxError) in try capability(f, p, set: false) }
        d.register(.capset) { f, p throws(LinuxError) in try capability(f, p, set: true) }
    }

    private static func id(_ v: UInt64) -> UInt32? {
        let x = UInt32(truncatingIfNeeded: v)
        return x == UInt32.max ? nil : x
    }

    /// After a change: the VFS checks use the file-system ids.
    private static func syncCredentials(_ p: LinuxProcess) {
        let (u, g) = p.compat.lock.withLock { (p.compat.uids.3, p.compat.gids.3) }
        p.fs.credentials.uid = u
        p.fs.credentials.gid = g
    }

    static func setIDs(_ p: LinuxProcess, user: Bool, _ a: UInt64, _ b: UInt64, _ c: UInt64) throws(LinuxError) -> Int64 {
        let (r, e, s) = (id(a), id(b), id(c))
        try p.compat.lock.withLock { () throws(LinuxError) in
            var ids = user ? p.compat.uids : p.compat.gids
            let privileged = p.compat.uids.1 == 0
            if !privileged {
                for v in [r, e, s].compactMap({ $0 }) where v != ids.0 && v != ids.1 && v != ids.2 { throw LinuxError(.EPERM) }
            }
            if let r { ids.0 = r }
            if let e { ids.1 = e }
            if let s { ids.2 = s }
            ids.3 = ids.1
            if user { p.compat.uids = ids } else { p.compat.gids = ids }
        }
        syncCredentials(p)
        return 0
    }

    static func setID(_ p: LinuxProcess, user: Bool, _ a: UInt64) throws(LinuxError) -> Int64 {
        guard let v = id(a) else { throw LinuxError(.EINVAL) }
        try p.compat.lock.withLock { () throws(LinuxError) in
            var ids = user ? p.compat.uids : p.compat.gids
            if p.compat.uids.1 == 0 {
                ids = (v, v, v, v)
            } else {
                guard v == ids.0 || v == ids.2 else { throw LinuxError(.EPERM) }
                ids.1 = v
                ids.3 = v
            }
            if user { p.compat.uids = ids } else { p.compat.gids = ids }
        }
        syncCredentials(p)
        return 0
    }

    static func setReIDs(_ p: LinuxProcess, user: Bool, _ a: UInt64, _ b: UInt64) throws(LinuxError) -> Int64 {
        let (r, e) = (id(a), id(b))
        try p.compat.lock.withLock { () throws(LinuxError) in
            var ids = user ? p.compat.uids : p.compat.gids
            let old = ids
            if p.compat.uids.1 != 0 {
                if let r, r != old.0, r != old.1 { throw LinuxError(.EPERM) }
                if let e, e != old.0, e != old.1, e != old.2 { throw LinuxError(.EPERM) }
            }
            if let r { ids.0 = r }
            if let e { ids.1 = e }
            // The saved id follows the effective one when the real one is set or the
            // effective one leaves the old real one (setreuid(2)).
            if r != nil || (e != nil && e != old.0) { ids.2 = ids.1 }
            ids.3 = ids.1
            if user { p.compat.uids = ids } else { p.compat.gids = ids }
        }
        syncCredentials(p)
        return 0
    }

    /// setfsuid/setfsgid: always the old value; changes only to an id the process has.
    static func setFsID(_ p: LinuxProcess, user: Bool, _ a: UInt64) -> Int64 {
        let v = UInt32(truncatingIfNeeded: a)
        let old = p.compat.lock.withLock { () -> UInt32 in
            var ids = user ? p.compat.uids : p.compat.gids
            let old = ids.3
            if p.compat.uids.1 == 0 || [ids.0, ids.1, ids.2, ids.3].contains(v) { ids.3 = v }
            if user { p.compat.uids = ids } else { p.compat.gids = ids }
            return old
        }
        syncCredentials(p)
        return Int64(old)
    }

    /// capget/capset with the header's pid translated (0 or this process only).
    static func capability(_ f: SyscallFrame, _ p: LinuxProcess, set: Bool) throws(LinuxError) -> Int64 {
        var header = try UserMemory.load((UInt32, Int32).self, at: f.a0)
        let pid = header.1
        if pid < 0 { throw LinuxError(.EINVAL) }
        if !isSelf(pid, p) { throw LinuxError(set ? .EPERM : .ESRCH) }
        header.1 = 0
        if set {
            // Compare the request with what the process has.
            let version = header.0
            let words = version == 0x1998_0330 ? 1 : 2
            var current = [UInt32](repeating: 0, count: 6)
            var h = header
            let r = withUnsafeMutablePointer(to: &h) { hp in
                current.withUnsafeMutableBytes { cj_host_syscall(125, UInt64(UInt(bitPattern: hp)), UInt64(UInt(bitPattern: $0.baseAddress!)), 0, 0, 0, 0) }
            }
            if r < 0 {
                try UserMemory.store(h.0, at: f.a0)
                throw LinuxError(Errno(rawValue: Int32(-r)))
            }
            for i in 0..<(3 * words) where try UserMemory.load(UInt32.self, at: f.a1 + UInt64(4 * i)) != current[i] {
                throw LinuxError(.EPERM)
            }
            return 0
        }
        let r = withUnsafeMutablePointer(to: &header) { cj_host_syscall(125, UInt64(UInt(bitPattern: $0)), f.a1, 0, 0, 0, 0) }
        if r < 0 {
            if r == -Int64(EINVAL) { try UserMemory.store(header.0, at: f.a0) }  // the preferred version
            throw LinuxError(Errno(rawValue: Int32(-r)))
        }
        return r
    }

    // MARK: names, chroot, clocks

    static func registerSystemNames(_ d: Dispatcher) {
        let setName: SyscallHandler = { f, p throws(LinuxError) in
            guard p.compat.privileged else { throw LinuxError(.EPERM) }
            let length = Int64(bitPattern: f.a1)
            guard length >= 0, length <= 64 else { throw LinuxError(.EINVAL) }
            let bytes = Array(try UserMemory.buffer(f.a0, Int(length), for: .read))
            p.compat.lock.withLock {
                if f.number == 170 { p.compat.hostName = bytes } else { p.compat.domainName = bytes }
            }
            return 0
        }
        d.register(.sethostname, setName)
        d.register(.setdomainname, setName)
        d.register(.uname) { f, p throws(LinuxError) in
            let buf = try UserMemory.pointer(f.a0, 390, for: .write)
            _ = try hostCall(63, f.a0)
            let (host, domain) = p.compat.lock.withLock { (p.compat.hostName, p.compat.domainName) }
            for (name, offset) in [(host, 65), (domain, 325)] {
                guard let name else { continue }
                (buf + offset).initializeMemory(as: UInt8.self, repeating: 0, count: 65)
                name.withUnsafeBytes { (buf + offset).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
            }
            return 0
        }
        // chroot: the path is checked as Linux does; changing the instance's root is
        // not done, so even root gets EPERM.
        d.register(.chroot) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            let loc = try fsCall { () throws(Errno) in try p.fs.resolve(path) }
            guard loc.node.kind == .directory else { throw LinuxError(.ENOTDIR) }
            throw LinuxError(.EPERM)
        }
        // Setting a clock: only CLOCK_REALTIME can be set; unprivileged callers get
        // EPERM; for root, the host decides (it is the host's clock).
        d.register(.clock_settime) { f, p throws(LinuxError) in
            let time = try UserTimespec.load(at: f.a1)
            guard Int32(truncatingIfNeeded: f.a0) == CLOCK_REALTIME else { throw LinuxError(.EINVAL) }
            guard time.isValid else { throw LinuxError(.EINVAL) }
            guard p.compat.privileged else { throw LinuxError(.EPERM) }
            return try hostCall(227, f.a0, f.a1)
        }
        d.register(.settimeofday) { f, p throws(LinuxError) in
            if f.a0 != 0 {
                let usec = try UserMemory.load(Int64.self, at: f.a0 + 8)
                guard usec >= 0, usec < 1_000_000 else { throw LinuxError(.EINVAL) }
            }
            guard p.compat.privileged else { throw LinuxError(.EPERM) }
            return try hostCall(164, f.a0, f.a1)
        }
    }
}
