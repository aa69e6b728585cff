// Types.swift: the value types of the VFS: node kinds, stat, open flags (Linux's bit
// values), credentials and directory entries (readiness is UThreads' `Readiness`).
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What a node is.
public enum NodeKind: Sendable, Equatable {
    case regular, directory, symlink, characterDevice, blockDevice, fifo, socket

    /// The S_IFMT bits.
    public var modeBits: UInt32 {
        switch self {
        case .regular: 0o100000
        case .directory: 0o040000
        case .symlink: 0o120000
        case .characterDevice: 0o020000
        case .blockDevice: 0o060000
        case .fifo: 0o010000
        case .socket: 0o140000
        }
    }

    /// The d_type value for getdents64.
    public var directoryEntryType: UInt8 {
        switch self {
        case .regular: 8
        case .directory: 4
        case .symlink: 10
        case .characterDevice: 2
        case .blockDevice: 6
        case .fifo: 1
        case .socket: 12
        }
    }

    public init?(modeBits: UInt32) {
        switch modeBits & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        case 0o020000: self = .characterDevice
        case 0o060000: self = .blockDevice
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        default: return nil
        }
    }
}

/// A point in time as struct timespec holds it.
public struct Timespec: Sendable, Equatable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static var now: Timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timespec(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }

    public static func < (a: Timespec, b: Timespec) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// The fields of struct stat that Linux fills.
public struct FileStatus: Sendable, Equatable {
    public var device: UInt64 = 0
    public var inode: UInt64 = 0
    /// S_IFMT bits and permission bits.
    public var mode: UInt32 = 0
    public var linkCount: UInt64 = 1
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var rdev: UInt64 = 0
    public var size: Int64 = 0
    public var blockSize: Int64 = 4096
    /// 512-byte blocks allocated.
    public var blocks: Int64 = 0
    public var accessTime = Timespec(seconds: 0, nanoseconds: 0)
    public var modificationTime = Timespec(seconds: 0, nanoseconds: 0)
    public var changeTime = Timespec(seconds: 0, nanoseconds: 0)

    public init() {}

    public var kind: NodeKind? { NodeKind(modeBits: mode) }
    public var permissions: UInt32 { mode & 0o7777 }
}

/// open(2) flags, with Linux x86-64's values.
public struct OpenFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let writeOnly = OpenFlags(rawValue: 0o1)
    public static let readWrite = OpenFlags(rawValue: 0o2)
    public static let create = OpenFlags(rawValue: 0o100)
    public static let exclusive = OpenFlags(rawValue: 0o200)
    public static let noControllingTerminal = OpenFlags(rawValue: 0o400)
    public static let truncate = OpenFlags(rawValue: 0o1000)
    public static let append = OpenFlags(rawValue: 0o2000)
    public static let nonBlocking = OpenFlags(rawValue: 0o4000)
    public static let dataSync = OpenFlags(rawValue: 0o10000)
    public static let directory = OpenFlags(rawValue: 0o200000)
    /// O_LARGEFILE: a 64-bit kernel sets it on every file open(2) opens (force_o_largefile).
    public static let largeFile = OpenFlags(rawValue: 0o100000)
    public static let noFollow = OpenFlags(rawValue: 0o400000)
    public static let closeOnExec = OpenFlags(rawValue: 0o2000000)
    public static let path = OpenFlags(rawValue: 0o10000000)
    /// O_TMPFILE (includes O_DIRECTORY's bit, as in Linux).
    public static let temporaryFile = OpenFlags(rawValue: 0o20200000)

    /// O_ACCMODE.
    public var accessMode: Int32 { rawValue & 0o3 }
    public var canRead: Bool { accessMode == 0 || accessMode == 2 }
    public var canWrite: Bool { accessMode == 1 || accessMode == 2 }
    public var isTemporaryFile: Bool { rawValue & OpenFlags.temporaryFile.rawValue == OpenFlags.temporaryFile.rawValue }
}

/// Who performs an operation, for permission checks.
public struct Credentials: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The host process's own identity.
    public static var host: Credentials { Credentials(uid: getuid(), gid: getgid()) }
    public static let root = Credentials(uid: 0, gid: 0)

    public struct Access: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let read = Access(rawValue: 4)
        public static let write = Access(rawValue: 2)
        public static let execute = Access(rawValue: 1)
    }

    /// Linux's generic_permission for a node: root passes read/write always, and execute
    /// when any execute bit is set (or for directories).
    public func allows(_ want: Access, _ st: FileStatus) -> Bool {
        if uid == 0 {
            if !want.contains(.execute) { return true }
            return st.kind == .directory || st.mode & 0o111 != 0
        }
        let bits: UInt32
        if st.uid == uid {
            bits = (st.mode >> 6) & 7
        } else if st.gid == gid || groups.contains(st.gid) {
            bits = (st.mode >> 3) & 7
        } else {
            bits = st.mode & 7
        }
        return bits & want.rawValue == want.rawValue
    }
}

/// One directory entry as getdents64 reports it.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var inode: UInt64
    public var kind: NodeKind
    /// The position after this entry (d_off): pass it back to continue.
    public var nextCookie: Int64

    public init(name: String, inode: UInt64, kind: NodeKind, nextCookie: Int64) {
        self.name = name
        self.inode = inode
        self.kind = kind
        self.nextCookie = nextCookie
    }
}

/// Linux limits the VFS enforces.
public enum PathLimits {
    /// PATH_MAX, including the NUL.
    public static let pathMax = 4096
    /// NAME_MAX.
    public static let nameMax = 255
    /// How many symlinks one lookup may follow (Linux's MAXSYMLINKS).
    public static let symlinkMax = 40
}
