// LinuxError.swift: errno values as handlers return them (negated in rax).
import SystemPackage

/// An errno a system call returns.
public struct LinuxError: Error, Equatable, Sendable {
    public let code: Int32

    public init(_ code: Code) { self.code = code.rawValue }
    public init(_ errno: Errno) { code = errno.rawValue }
    init(rawCode: Int32) { code = rawCode }

    /// The errno names handlers use most.
    public enum Code: Int32 {
        case EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, E2BIG = 7, EBADF = 9, ECHILD = 10, EAGAIN = 11
        case ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20, EISDIR = 21
        case EINVAL = 22, EMFILE = 24, ENOTTY = 25, ESPIPE = 29, EPIPE = 32, ERANGE = 34, ENAMETOOLONG = 36
        case ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EAFNOSUPPORT = 97, ETIMEDOUT = 110
        case ENOTSOCK = 88, EMSGSIZE = 90, ENOPROTOOPT = 92, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EISCONN = 106
    }
}
