// Differential.swift: one random sequence of file operations, applied to our VFS and to
// the host kernel's tmpfs, must give the same results and errnos step by step.
import FileSystem
import Foundation
import SystemPackage

/// One file operation on the small namespace the generator draws from.
enum FileOp: CustomStringConvertible, Equatable, Sendable {
    case create(String, flagsIndex: Int)
    case write(String, offset: Int, bytes: Int)
    case append(String, bytes: Int)
    case read(String)
    case mkdir(String)
    case rmdir(String)
    case unlink(String)
    case rename(String, String)
    case symlink(target: String, String)
    case link(String, String)
    case truncate(String, Int)
    case stat(String)
    case lstat(String)
    case readlink(String)
    case list(String)
    case access(String)

    static let paths = ["a", "b", "d", "d/x", "d/e", "d/e/y", "l", "d/l", "e", "a/", "d/", "d/../b", "./a",
                        "l/x", "d/e/../x", "nope/x", "d/e/", "."]
    // Relative targets only: ".." out of the scratch root or an absolute path would leave
    // the host's scratch directory, which our side cannot follow.
    static let targets = ["a", "d", "d/x", "l", "nope", "x/../a", "e", "d/e"]
    /// open(2) flag sets tried by `.create` (Linux values).
    static let flagSets: [OpenFlags] = [
        [.create], [.create, .writeOnly], [.create, .exclusive, .readWrite], [.writeOnly, .truncate],
        [.directory], [.noFollow], [.writeOnly, .append, .create], [.readWrite],
    ]

    /// Decodes one generated number into an operation.
    init(_ n: Int) {
        let p = Self.paths
        let a = p[(n / 16) % p.count], b = p[(n / 331) % p.count]
        let t = Self.targets[(n / 16) % Self.targets.count]
        switch n % 16 {
        case 0: self = .create(a, flagsIndex: (n / 7) % Self.flagSets.count)
        case 1: self = .write(a, offset: [0, 5, 4095, 4097, 20000][(n / 5) % 5], bytes: [1, 10, 5000][(n / 11) % 3])
        case 2: self = .append(a, bytes: [3, 4096][(n / 13) % 2])
        case 3: self = .read(a)
        case 4: self = .mkdir(a)
        case 5: self = .rmdir(a)
        case 6: self = .unlink(a)
        case 7: self = .rename(a, b)
        case 8: self = .symlink(target: t, b)
        case 9: self = .link(a, b)
        case 10: self = .truncate(a, [0, 3, 9000][(n / 17) % 3])
        case 11: self = .stat(a)
        case 12: self = .lstat(a)
        case 13: self = .readlink(a)
        case 14: self = .list(a)
        default: self = .access(a)
        }
    }

    var description: String {
        switch self {
        case let .create(p, f): "open(\(p), \(Self.flagSets[f].rawValue))"
        case let .write(p, o, n): "pwrite(\(p), off \(o), \(n) bytes)"
        case let .append(p, n): "append(\(p), \(n))"
        case .read(let p): "read(\(p))"
        case .mkdir(let p): "mkdir(\(p))"
        case .rmdir(let p): "rmdir(\(p))"
        case .unlink(let p): "unlink(\(p))"
        case let .rename(a, b): "rename(\(a), \(b))"
        case let .symlink(t, p): "symlink(\(t), \(p))"
        case let .link(a, b): "link(\(a), \(b))"
        case let .truncate(p, n): "truncate(\(p), \(n))"
        case .stat(let p): "stat(\(p))"
        case .lstat(let p): "lstat(\(p))"
        case .readlink(let p): "readlink(\(p))"
        case .list(let p): "getdents(\(p))"
        case .access(let p): "access(\(p))"
        }
    }
}

/// The observable outcome of one operation.
enum Outcome: Equatable, CustomStringConvertible {
    case ok(String)
    case error(Int32)

    var description: String {
        switch self {
        case .ok(let s): "ok \(s)"
        case .error(let e): "errno \(e) (\(Errno(rawValue: e)))"
        }
    }
}

func pattern(_ n: Int, seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ seed) } }

func describe(_ st: FileStatus) -> String {
    // Inode numbers, devices and times differ between file systems by design.
    "kind \(String(describing: st.kind)) mode \(String(st.permissions, radix: 8)) nlink \(st.linkCount) size \(st.size) blocks \(st.blocks)"
}

/// Applies operations to our VFS through a FileSystemContext.
struct OursApplier {
    let ctx: FileSystemContext

    func apply(_ op: FileOp) -> Outcome {
        do throws(Errno) {
            switch op {
            case let .create(p, f):
                _ = try ctx.open(p, flags: FileOp.flagSets[f], mode: 0o644)
                return .ok("")
            case let .write(p, o, n):
                let f = try ctx.open(p, flags: .writeOnly)
                let data = pattern(n, seed: o)
                let w = try f.write(bytes: data, at: Int64(o))
                return .ok("\(w)")
            case let .append(p, n):
                let f = try ctx.open(p, flags: [.writeOnly, .append])
                let data = pattern(n, seed: 7)
                let w = try f.write(bytes: data)
                return .ok("\(w) offset \(f.offset)")
            case .read(let p):
                let f = try ctx.open(p, flags: [])
                var all: [UInt8] = []
                while true {
                    let chunk = try f.read(count: 3000)
                    if chunk.isEmpty { break }
                    all += chunk
                }
                return .ok("\(all.count) bytes hash \(all.reduce(5381) { ($0 &* 33) ^ Int($1) })")
            case .mkdir(let p): try ctx.makeDirectory(p, mode: 0o755)
            case .rmdir(let p): try ctx.removeDirectory(p)
            case .unlink(let p): try ctx.unlink(p)
            case let .rename(a, b): try ctx.rename(a, to: b)
            case let .symlink(t, p): try ctx.makeSymlink(t, at: p)
            case let .link(a, b): try ctx.link(a, to: b)
            case let .truncate(p, n): try ctx.truncate(p, to: Int64(n))
            case .stat(let p): return .ok(describe(try ctx.status(p)))
            case .lstat(let p): return .ok(describe(try ctx.status(p, followSymlinks: false)))
            case .readlink(let p): return .ok(try ctx.readLink(p))
            case .access(let p): try ctx.access(p, mode: 0)
            case .list(let p):
                let f = try ctx.open(p, flags: .directory)
                // A small buffer forces several getdents calls.
                return .ok(try f.readDirectoryNames(bufferSize: 64).sorted().joined(separator: ","))
            }
            return .ok("")
        } catch {
            return .error(error.rawValue)
        }
    }
}

/// Applies operations to the host kernel below `root`.
struct HostApplier {
    let root: String

    func path(_ p: String) -> String { root + "/" + p }

    func apply(_ op: FileOp) -> Outcome {
        func fail() -> Outcome { .error(errno) }
        switch op {
        case let .create(p, f):
            let fd = open(path(p), FileOp.flagSets[f].rawValue | O_CLOEXEC, 0o644)
            if fd < 0 { return fail() }
            close(fd)
            return .ok("")
        case let .write(p, o, n):
            let fd = open(path(p), O_WRONLY | O_CLOEXEC)
            if fd < 0 { return fail() }
            defer { close(fd) }
            let data = pattern(n, seed: o)
            let w = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(o)) }
            return w < 0 ? fail() : .ok("\(w)")
        case let .append(p, n):
            let fd = open(path(p), O_WRONLY | O_APPEND | O_CLOEXEC)
            if fd < 0 { return fail() }
            defer { close(fd) }
            let data = pattern(n, seed: 7)
            let w = data.withUnsafeBytes { write(fd, $0.baseAddress, n) }
            if w < 0 { return fail() }
            return .ok("\(w) offset \(lseek(fd, 0, SEEK_CUR))")
        case .read(let p):
            let fd = open(path(p), O_RDONLY | O_CLOEXEC)
            if fd < 0 { return fail() }
            defer { close(fd) }
            var all: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 3000)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 3000) }
                if n < 0 { return fail() }
                if n == 0 { break }
                all += chunk[..<n]
            }
            return .ok("\(all.count) bytes hash \(all.reduce(5381) { ($0 &* 33) ^ Int($1) })")
        case .mkdir(let p): return mkdir(path(p), 0o755) == 0 ? .ok("") : fail()
        case .rmdir(let p): return rmdir(path(p)) == 0 ? .ok("") : fail()
        case .unlink(let p): return unlink(path(p)) == 0 ? .ok("") : fail()
        case let .rename(a, b): return rename(path(a), path(b)) == 0 ? .ok("") : fail()
        case let .symlink(t, p): return symlink(t, path(p)) == 0 ? .ok("") : fail()
        case let .link(a, b): return link(path(a), path(b)) == 0 ? .ok("") : fail()
        case let .truncate(p, n): return truncate(path(p), off_t(n)) == 0 ? .ok("") : fail()
        case .stat(let p), .lstat(let p):
            var st = stat()
            let r = { if case .stat = op { return stat(path(p), &st) } else { return lstat(path(p), &st) } }()
            if r != 0 { return fail() }
            var fs = FileStatus()
            fs.mode = st.st_mode
            fs.linkCount = UInt64(st.st_nlink)
            fs.size = Int64(st.st_size)
            fs.blocks = Int64(st.st_blocks)
            return .ok(describe(fs))
        case .readlink(let p):
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink(path(p), &buf, 4096)
            if n < 0 { return fail() }
            return .ok(String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case .access(let p): return access(path(p), F_OK) == 0 ? .ok("") : fail()
        case .list(let p):
            guard let dir = opendir(path(p)) else { return fail() }
            defer { closedir(dir) }
            var names: [String] = []
            while let e = readdir(dir) {
                names.append(withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
            }
            return .ok(names.sorted().joined(separator: ","))
        }
    }
}

func parseDirents(_ buf: [UInt8], _ n: Int) -> [String] {
    var names: [String] = []
    var off = 0
    buf.withUnsafeBytes { raw in
        while off < n {
            let reclen = Int(raw.load(fromByteOffset: off + 16, as: UInt16.self))
            let nameStart = off + 19
            var end = nameStart
            while raw[end] != 0 { end += 1 }
            names.append(String(decoding: raw[nameStart..<end], as: UTF8.self))
            off += reclen
        }
    }
    return names
}

/// A fresh empty directory on the host's tmpfs (/dev/shm), removed by `cleanup`.
func hostScratch(_ tag: String) -> String {
    let dir = "/dev/shm/junction-fs-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(dir, 0o755)
    return dir
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

extension OpenFile {
    func write(bytes: [UInt8], at offset: Int64? = nil) throws(Errno) -> Int {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        defer { buf.deallocate() }
        buf.copyBytes(from: bytes)
        let view = UnsafeRawBufferPointer(rebasing: buf[..<bytes.count])
        if let offset { return try write(from: view, at: offset) }
        return try write(from: view)
    }

    func read(count: Int, at offset: Int64? = nil) throws(Errno) -> [UInt8] {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, count), alignment: 8)
        defer { buf.deallocate() }
        let view = UnsafeMutableRawBufferPointer(rebasing: buf[..<count])
        let n: Int
        if let offset { n = try read(into: view, at: offset) } else { n = try read(into: view) }
        return Array(buf[..<n])
    }

    func readDirectoryNames(bufferSize: Int = 4096) throws(Errno) -> [String] {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buf.deallocate() }
        var names: [String] = []
        while true {
            let n = try readDirectoryEntries(into: buf)
            if n == 0 { return names }
            names += parseDirents(Array(buf[..<n]), n)
        }
    }
}
