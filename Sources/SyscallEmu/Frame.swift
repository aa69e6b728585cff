// Frame.swift: the intercepted call as handlers see it: the number, six arguments, and
// the parts of the application's register state a handler may change (%fs, rip).
import CJunction

/// One intercepted system call: a view of the frame the entry code saved.
public struct SyscallFrame {
    @usableFromInline let raw: UnsafeMutablePointer<cj_syscall_frame>

    @inlinable init(_ raw: UnsafeMutablePointer<cj_syscall_frame>) { self.raw = raw }

    @inlinable public var number: Int { Int(raw.pointee.nr) }
    @inlinable public var a0: UInt64 { raw.pointee.rdi }
    @inlinable public var a1: UInt64 { raw.pointee.rsi }
    @inlinable public var a2: UInt64 { raw.pointee.rdx }
    @inlinable public var a3: UInt64 { raw.pointee.r10 }
    @inlinable public var a4: UInt64 { raw.pointee.r8 }
    @inlinable public var a5: UInt64 { raw.pointee.r9 }

    /// The application's %fs base, restored when the call returns.
    @inlinable public var fsBase: UInt64 {
        get { raw.pointee.fs_base }
        nonmutating set { raw.pointee.fs_base = newValue }
    }

    /// Where the application continues.
    @inlinable public var instructionPointer: UInt64 { raw.pointee.rip }

    /// The six arguments, for tracing.
    public var arguments: [UInt64] { [a0, a1, a2, a3, a4, a5] }
}

/// Reads and writes of application memory. The application shares this address space;
/// NULL and kernel-half pointers are refused with EFAULT at once, and every page of a
/// range is touched first (`cj_probe_user`: a fault there is caught), so an unmapped or
/// read-only buffer gives EFAULT as in Linux instead of faulting the instance. A buffer
/// that is only partly accessible fails as a whole (Linux may copy up to the bad page).
public enum UserMemory {
    /// How the libOS will touch a range.
    public enum Access { case read, write }

    @inline(__always)
    public static func isPlausible(_ address: UInt64, _ length: Int = 1) -> Bool {
        address >= 4096 && address < (1 << 47) && UInt64(length) <= (1 << 47) - address
    }

    /// Linux's access_ok: the range lies below the top of the user half (TASK_SIZE_MAX,
    /// 2^47 - 4096), whatever is mapped there (NULL passes). The first memory check Linux
    /// makes, before the descriptor's own answers; the copy itself faults later.
    @inline(__always)
    public static func accessOK(_ address: UInt64, _ length: UInt64) -> Bool {
        let top: UInt64 = (1 << 47) - 4096
        return length <= top && address <= top - length
    }

    /// The process whose memory user pointers must lie in: its address-space book (what
    /// the program mapped, was loaded into, and its break). Set when its dispatcher is
    /// installed; nil (the libraries used without a process) checks plausibility only.
    @exclusivity(unchecked) nonisolated(unsafe) static var owner: LinuxProcess?

    /// Whether [address, address + length) is the program's memory: a pointer into the
    /// libOS's own code, heap, stacks or rings is EFAULT, as an unmapped one would be.
    @inline(__always)
    static func isApplication(_ address: UInt64, _ length: Int) -> Bool {
        guard let p = owner else { return true }
        let end = address + UInt64(length)
        return p.addressSpace.contains(address, end) || p.programBreak.contains(address, end)
    }

    /// How many bytes from `address` on (at most `length`) are the program's without a gap.
    static func applicationLength(_ address: UInt64, _ length: Int) -> Int {
        guard let p = owner else { return length }
        let n = Int(p.addressSpace.ownedLength(from: address, limit: UInt64(length)))
        if n > 0 { return n }
        return p.programBreak.contains(address, address + UInt64(length)) ? length : 0
    }

    /// `length` bytes at `address`, checked for `access`.
    public static func pointer(_ address: UInt64, _ length: Int = 1, for access: Access) throws(LinuxError) -> UnsafeMutableRawPointer {
        guard length == 0 || (isPlausible(address, length) && isApplication(address, length)),
              let p = UnsafeMutableRawPointer(bitPattern: UInt(address)) else {
            throw LinuxError(.EFAULT)
        }
        if length > 0 && cj_probe_user(UInt(address), length, access == .write ? 1 : 0) != 0 { throw LinuxError(.EFAULT) }
        return p
    }

    public static func buffer(_ address: UInt64, _ length: Int, for access: Access) throws(LinuxError) -> UnsafeMutableRawBufferPointer {
        guard length >= 0 else { throw LinuxError(.EINVAL) }
        if length == 0 { return try empty(address) }
        return UnsafeMutableRawBufferPointer(start: try pointer(address, length, for: access), count: length)
    }

    /// An empty buffer: Linux's access_ok still refuses one starting past the user half.
    static func empty(_ address: UInt64) throws(LinuxError) -> UnsafeMutableRawBufferPointer {
        guard address <= (1 << 47) - 4096 else { throw LinuxError(.EFAULT) }
        return UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    /// A buffer the host kernel itself will read or write (a file backed by a host
    /// descriptor): only refused when absurd; the kernel answers EFAULT for the rest, as
    /// Linux would (with the bytes before a bad page), and no page is touched here.
    public static func kernelBuffer(_ address: UInt64, _ length: Int) throws(LinuxError) -> UnsafeMutableRawBufferPointer {
        guard length >= 0 else { throw LinuxError(.EINVAL) }
        if length == 0 { return try empty(address) }
        guard isPlausible(address, length), let p = UnsafeMutableRawPointer(bitPattern: UInt(address)) else { throw LinuxError(.EFAULT) }
        // The libOS's memory past the program's acts as a hole: the kernel copies up to it,
        // as Linux copies up to a bad page.
        let owned = applicationLength(address, length)
        guard owned > 0 else { throw LinuxError(.EFAULT) }
        return UnsafeMutableRawBufferPointer(start: p, count: owned)
    }

    /// The buffer of a read or write on `file`: unprobed when the host kernel does the
    /// copy, probed for `access` when the libOS does.
    public static func buffer(_ address: UInt64, _ length: Int, for access: Access, hostCopies: Bool) throws(LinuxError) -> UnsafeMutableRawBufferPointer {
        hostCopies ? try kernelBuffer(address, length) : try buffer(address, length, for: access)
    }

    /// A NUL-terminated string of at most `limit` bytes (ENAMETOOLONG past it).
    public static func string(_ address: UInt64, limit: Int = 4096) throws(LinuxError) -> String {
        guard isPlausible(address) else { throw LinuxError(.EFAULT) }
        let n = cj_user_strnlen(UInt(address), limit)
        if n < 0 { throw LinuxError(.EFAULT) }
        if n >= limit { throw LinuxError(.ENAMETOOLONG) }
        guard isApplication(address, Int(n) + 1) else { throw LinuxError(.EFAULT) }
        let p = UnsafePointer<UInt8>(bitPattern: UInt(address))!
        return String(pathBytes: UnsafeBufferPointer(start: p, count: Int(n)))
    }

    /// The bytes of a NUL-terminated string of at most `limit` bytes, exactly as they are
    /// (argv and envp: not a file name, not necessarily UTF-8); E2BIG past the limit.
    public static func cStringBytes(_ address: UInt64, limit: Int) throws(LinuxError) -> [UInt8] {
        guard isPlausible(address) else { throw LinuxError(.EFAULT) }
        let n = cj_user_strnlen(UInt(address), limit)
        if n < 0 { throw LinuxError(.EFAULT) }
        if n >= limit { throw LinuxError(.E2BIG) }
        guard isApplication(address, Int(n) + 1) else { throw LinuxError(.EFAULT) }
        return Array(UnsafeBufferPointer(start: UnsafePointer<UInt8>(bitPattern: UInt(address))!, count: Int(n)))
    }

    public static func store<T>(_ value: T, at address: UInt64) throws(LinuxError) {
        try pointer(address, MemoryLayout<T>.size, for: .write).storeBytes(of: value, as: T.self)
    }

    public static func load<T>(_ type: T.Type, at address: UInt64) throws(LinuxError) -> T {
        try pointer(address, MemoryLayout<T>.size, for: .read).loadUnaligned(as: T.self)
    }
}
