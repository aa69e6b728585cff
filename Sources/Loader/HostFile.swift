// HostFile.swift: the host calls the Loader makes (open, pread, fstat, access, mmap,
// mprotect), each through HostCall, which reads errno right after the call, into typed
// errors; a `~Copyable` owner closes its descriptor.
import CJunction
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An open, read-only host file. Closing is tied to its lifetime.
public struct HostFile: ~Copyable, ELFByteSource {
    public let path: String
    public let fd: Int32
    public let size: UInt64

    /// Opens `path` read-only (O_CLOEXEC) and checks it is a regular file.
    public init(path: String) throws(LoadError) {
        let fd: Int32
        switch HostCall.run(path: path, { open($0, O_RDONLY | O_CLOEXEC) }) {
        case .success(let v): fd = v
        case .failure(let e): throw .io(path: path, call: "open", errno: e)
        }
        var st = stat()
        if case .failure(let e) = HostCall.run({ fstat(fd, &st) }) {
            close(fd)
            throw .io(path: path, call: "fstat", errno: e)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .io(path: path, call: "open", errno: st.st_mode & S_IFMT == S_IFDIR ? .isDirectory : .permissionDenied)
        }
        self.path = path
        self.fd = fd
        self.size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    public func read(offset: UInt64, count: Int) throws(LoadError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { buf in
                HostCall.run { pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            }
            switch n {
            case .failure(let e): throw .io(path: path, call: "pread", errno: e)
            case .success(0): throw .invalidFile(path: path, .truncated(what: "read", needed: offset + UInt64(count), fileSize: size))
            case .success(let n): done += n
            }
        }
        return out
    }

    /// The first bytes of the file (up to `count`).
    func head(_ count: Int) throws(LoadError) -> [UInt8] {
        try read(offset: 0, count: Int(min(UInt64(count), size)))
    }
}

/// The Loader's host-call funnel: errno is read as the call returns, before anything
/// else runs (a String's C copy freed, a close, an allocation may each change it), and
/// EINTR is retried here, once for all.
enum HostCall {
    /// Runs a call that fails with -1 and errno; its result or the errno.
    static func run<T: BinaryInteger>(_ body: () -> T) -> Result<T, Errno> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            let e = errno
            if e != EINTR { return .failure(Errno(rawValue: e)) }
        }
    }

    /// The same for a call on a path: errno is read inside `withCString`, before its
    /// copy of the path is released.
    static func run<T: BinaryInteger>(path: String, _ body: (UnsafePointer<CChar>) -> T) -> Result<T, Errno> {
        path.withCString { p in run { body(p) } }
    }
}

/// Memory calls, each returning the errno on failure (read right after the call).
enum Memory {
    static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    static func roundDown(_ v: UInt64) -> UInt64 { v & ~(pageSize - 1) }
    static func roundUp(_ v: UInt64) -> UInt64 { (v + pageSize - 1) & ~(pageSize - 1) }

    static func map(_ address: UInt64, _ length: UInt64, _ prot: Int32, _ flags: Int32, _ fd: Int32 = -1,
                    _ offset: UInt64 = 0) -> Result<UInt64, Errno> {
        let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(address)), Int(length), prot, flags, fd, off_t(offset))
        let e = errno
        guard let p, p != MAP_FAILED else { return .failure(Errno(rawValue: e)) }
        return .success(UInt64(UInt(bitPattern: p)))
    }

    static func protect(_ address: UInt64, _ length: UInt64, _ prot: Int32) -> Result<Void, Errno> {
        HostCall.run { mprotect(UnsafeMutableRawPointer(bitPattern: UInt(address)), Int(length), prot) }.map { _ in () }
    }

    static func unmap(_ address: UInt64, _ length: UInt64) {
        _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(address)), Int(length))
    }

    static func zero(_ address: UInt64, _ count: UInt64) {
        guard count > 0 else { return }
        UnsafeMutableRawPointer(bitPattern: UInt(address))!.initializeMemory(as: UInt8.self, repeating: 0, count: Int(count))
    }
}
