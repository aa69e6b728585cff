// Resolver.swift: `--dns IP` (repeatable): the instance's /etc/resolv.conf names those
// servers (a MemFS file mounted over the host's, which keeps the host's search and
// options lines), so glibc's and musl's resolvers send their queries over the
// instance's own stack. Without --dns the host's file is read as it is.
import FileSystem
import Glibc
import NetStack
import SystemPackage

/// A file system of one regular file: what a file bind mount puts over a path.
final class SingleFileMount: FileSystemInstance, @unchecked Sendable {
    private let backing: MemFS
    let root: any Node
    var deviceID: UInt64 { backing.deviceID }
    var typeName: String { backing.typeName }

    /// A file of mode 0644 owned by root holding `contents`.
    init(name: String, contents: String) throws(Errno) {
        backing = MemFS(mode: 0o755)
        root = try backing.root.create(name, kind: .regular, mode: 0o644, credentials: .root)
        let handle = try root.open(.writeOnly)
        let bytes = Array(contents.utf8)
        let n = try bytes.withUnsafeBytes { b in
            Result { () throws(Errno) in try handle.write(from: b, at: 0, nonBlocking: false) }
        }.get()
        handle.close()
        guard n == bytes.count else { throw .ioError }
    }
}

enum ResolverSetup {
    static let path = "/etc/resolv.conf"

    /// The resolv.conf an instance with `servers` reads: those servers, then the host's
    /// lines that are not `nameserver` (search, domain, options, sortlist).
    static func contents(servers: [String], host: String) -> String {
        var out = "# junction --dns: the instance's name servers\n"
        for s in servers { out += "nameserver \(s)\n" }
        for line in host.split(separator: "\n", omittingEmptySubsequences: false) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = words.first, first != "nameserver", !first.hasPrefix("#"), !first.hasPrefix(";") else { continue }
            out += line + "\n"
        }
        return out
    }

    /// The host file's text ("" when it cannot be read).
    static func readHostFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Checks `servers` (IPv4 addresses: the instance speaks no IPv6).
    static func check(_ servers: [String]) throws(InstanceError) {
        for s in servers where IPv4Address(s) == nil {
            throw .network("--dns '\(s)' is not an IPv4 address")
        }
    }

    /// Mounts the instance's resolv.conf over the host's (which must exist: a mount
    /// point does, as on Linux).
    static func install(servers: [String], in vfs: VFS) throws(InstanceError) {
        let host = readHostFile(path)
        do throws(Errno) {
            try vfs.mount(SingleFileMount(name: "resolv.conf", contents: contents(servers: servers, host: host)), at: path)
        } catch {
            throw .fileSystem("mounting the --dns resolv.conf on \(path)", error)
        }
    }
}
