// LoadError.swift: why a program could not be loaded: a malformed ELF, a bad script
// line, a missing file, an address range already taken, or a failed host call.
import SystemPackage

/// Why `Loader` could not load a program. Each case names the file involved.
public enum LoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is not a valid ELF program.
    case elf(ELFError)
    /// The same, with the path of the file it was found in.
    case invalidFile(path: String, ELFError)
    /// open/read/stat failed.
    case io(path: String, call: String, errno: Errno)
    /// Not an ELF file and not a `#!` script (Linux's ENOEXEC).
    case notExecutable(path: String)
    /// A `#!` line without an interpreter, or longer than Linux accepts.
    case badScript(path: String, reason: String)
    /// More than `Loader.maxScriptDepth` interpreters chained (Linux's ELOOP).
    case scriptDepthExceeded(path: String)
    /// A fixed-address (ET_EXEC) program's range is already mapped in this process.
    case addressRangeTaken(path: String, range: Range<UInt64>)
    /// mmap/mprotect failed while mapping.
    case mapping(path: String, call: String, errno: Errno)
    /// The initial stack does not fit (argv and environment too large).
    case argumentsTooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .elf(let e): e.description
        case let .invalidFile(path, e): "\(path): \(e)"
        case let .io(path, call, errno): "\(path): \(call): \(errno)"
        case .notExecutable(let path): "\(path): not an ELF executable or #! script (ENOEXEC)"
        case let .badScript(path, reason): "\(path): bad #! line: \(reason)"
        case .scriptDepthExceeded(let path): "\(path): too many levels of #! interpreters (ELOOP)"
        case let .addressRangeTaken(path, r):
            "\(path): its fixed address range \(hex(r.lowerBound))-\(hex(r.upperBound)) is already in use in this process"
        case let .mapping(path, call, errno): "\(path): \(call) failed while mapping: \(errno)"
        case let .argumentsTooLarge(bytes, limit): "arguments and environment take \(bytes) bytes, over the \(limit)-byte limit (E2BIG)"
        }
    }

    /// The errno Linux's execve returns for the same failure.
    public var errno: Errno {
        switch self {
        case .elf, .invalidFile, .notExecutable, .badScript: .execFormatError
        case .io(_, _, let e), .mapping(_, _, let e): e
        case .scriptDepthExceeded: .tooManySymbolicLinkLevels
        case .addressRangeTaken: .noMemory
        case .argumentsTooLarge: .argListTooLong
        }
    }
}
