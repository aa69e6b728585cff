// VFS.swift: the namespace: a mount table over file systems and Linux's path walk
// (".", "..", symlinks with a budget of 40, mount crossings, ENAMETOOLONG, trailing
// slashes), returning canonical locations.
import SystemPackage
import UThreads

/// A node together with the canonical absolute path it was reached by.
/// A symlink that, when followed, leads to an object rather than to a path (Linux's
/// "magic links" in /proc: fd/N, exe, cwd): readlink still gives a name.
public protocol MagicLink: Node {
    /// The object followed to; nil makes the VFS follow `readLink()` as a path.
    func linkedLocation() -> Location?
    /// The open file description the link stands for (/proc/self/fd/N): opening the link
    /// opens that file again (FileSystemContext.reopen), as Linux does.
    func openFile() -> OpenFile?
}

extension MagicLink {
    public func openFile() -> OpenFile? { nil }
}

public struct Location: Sendable {
    public let node: any Node
    public let path: String

    public init(node: any Node, path: String) {
        self.node = node
        self.path = path
    }

    func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    var parentPath: String {
        guard let slash = path.lastIndex(of: "/"), path != "/" else { return "/" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// A mount table and path resolution.
public final class VFS: @unchecked Sendable {
    private let lock = SpinLock()
    private var mounts: [String: any FileSystemInstance]

    /// A namespace whose "/" is `root`.
    public init(root: any FileSystemInstance) {
        mounts = ["/": root]
    }

    public var root: Location {
        Location(node: lock.withLock { mounts["/"]! }.root, path: "/")
    }

    /// Mounts `fs` on the directory (or, for a file system whose root is a file, the
    /// regular file) `path`, which must exist, as in Linux.
    public func mount(_ fs: any FileSystemInstance, at path: String) throws(Errno) {
        if path == "/" {
            lock.withLock { mounts["/"] = fs }
            return
        }
        let loc = try resolve(path, from: nil, followLast: true, credentials: .root)
        // A directory on a directory; a regular file only on a regular file (a file
        // bind mount, as `mount --bind FILE FILE`).
        guard loc.node.kind == fs.root.kind, loc.node.kind == .directory || loc.node.kind == .regular else {
            throw loc.node.kind == .directory ? .isDirectory : .notDirectory
        }
        lock.withLock { mounts[loc.path] = fs }
    }

    /// The mount table, sorted by path.
    public var mountTable: [(path: String, fileSystem: any FileSystemInstance)] {
        lock.withLock { mounts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    private func mounted(at path: String) -> (any FileSystemInstance)? {
        lock.withLock { mounts[path] }
    }

    /// The host file system, host path and VFS path that `path` names when resolving it
    /// is one walk inside a single HostFS: from `base` (or "/"), no "." or ".." or empty
    /// component, no trailing slash, and no mount on the way. nil otherwise (the walk
    /// then goes component by component). Symlinks are the caller's concern: it must not
    /// follow any (openat2's RESOLVE_NO_SYMLINKS).
    func hostTarget(_ path: String, from base: Location?) -> (fs: HostFS, hostPath: String, vfsPath: String)? {
        var bytes = path.utf8.makeIterator()
        guard let first = bytes.next() else { return nil }
        // Each component: not empty, not "." or ".."; nothing after a final "/".
        var length = 0, dots = 0
        let absolute = first == UInt8(ascii: "/")
        var c: UInt8? = absolute ? bytes.next() : first
        while true {
            guard let b = c, b != UInt8(ascii: "/") else {
                if length == 0 || (dots == length && dots <= 2) { return nil }
                if c == nil { break }
                length = 0; dots = 0
                c = bytes.next()
                continue
            }
            length += 1
            if b == UInt8(ascii: ".") { dots += 1 }
            c = bytes.next()
        }
        let start = absolute ? root : (base ?? root)
        guard let node = start.node as? HostNode else { return nil }
        let relative = absolute ? String(decoding: path.utf8.dropFirst(), as: UTF8.self) : path
        let vfsPath = absolute ? path : start.child(path)
        // A mount strictly below `start` that the path reaches or passes through.
        let crossed = lock.withLock {
            mounts.keys.contains { m in
                m.utf8.count > start.path.utf8.count && vfsPath.utf8.starts(with: m.utf8)
                    && (vfsPath.utf8.count == m.utf8.count || vfsPath.utf8.dropFirst(m.utf8.count).first == UInt8(ascii: "/"))
            }
        }
        if crossed { return nil }
        return (node.fs, node.childPath(relative), vfsPath)
    }

    // MARK: path walk

    static func components(_ path: String) throws(Errno) -> [String] {
        if path.pathByteCount >= PathLimits.pathMax { throw .fileNameTooLong }
        var out: [String] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c.utf8.count > PathLimits.nameMax, String(c).pathByteCount > PathLimits.nameMax { throw .fileNameTooLong }
            out.append(String(c))
        }
        return out
    }

    /// The location of `loc`'s parent directory (".." of it), across mounts.
    func parent(of loc: Location) throws(Errno) -> Location {
        if loc.path == "/" { return root }
        return try resolve(loc.parentPath, from: nil, followLast: true, credentials: .root)
    }

    /// Resolves `path` to a location.
    /// - Parameters:
    ///   - path: absolute, or relative to `base`.
    ///   - base: where a relative path starts (the cwd or a directory fd); nil means "/".
    ///   - followLast: follow a symlink in the last component.
    ///   - credentials: whose search permission each directory is checked against.
    public func resolve(_ path: String, from base: Location?, followLast: Bool,
                        credentials: Credentials) throws(Errno) -> Location {
        if path.isEmpty { throw .noSuchFileOrDirectory }
        var budget = PathLimits.symlinkMax
        var stack: [Location] = [path.hasPrefix("/") ? root : (base ?? root)]
        var queue = try Self.components(path)
        // A trailing slash makes the last component a directory, following symlinks.
        let trailingSlash = path.hasSuffix("/") && !queue.isEmpty
        var follow = followLast || trailingSlash
        queue.reverse()  // pop from the end
        while let name = queue.popLast() {
            let isLast = queue.isEmpty
            let top = stack[stack.count - 1]
            // Every component, "." and ".." included, must be looked up in a directory.
            guard top.node.kind == .directory else { throw .notDirectory }
            if name == "." { continue }
            if name == ".." {
                if stack.count > 1 { stack.removeLast() } else { stack[0] = try parent(of: top) }
                continue
            }
            if credentials.uid != 0, !credentials.allows(.execute, try top.node.status()) { throw .permissionDenied }
            var child = try top.node.lookup(name)
            let childPath = top.child(name)
            if let fs = mounted(at: childPath) { child = fs.root }
            if child.kind == .symlink && (!isLast || follow) {
                budget -= 1
                if budget < 0 { throw .tooManySymbolicLinkLevels }
                // /proc/self/fd/N, exe, cwd: the link leads to the object itself.
                if let magic = child as? MagicLink, let target = magic.linkedLocation() {
                    stack.append(target)
                    continue
                }
                let target = try child.readLink()
                if target.isEmpty { throw .noSuchFileOrDirectory }
                let parts = try Self.components(target)
                if target.hasPrefix("/") { stack = [root] }
                queue.append(contentsOf: parts.reversed())
                if isLast && target.hasSuffix("/") { follow = true }
                continue
            }
            stack.append(Location(node: child, path: childPath))
        }
        let result = stack[stack.count - 1]
        if trailingSlash && result.node.kind != .directory { throw .notDirectory }
        return result
    }

    /// Resolves everything but the last component: the directory an operation such as
    /// create, unlink or rename acts in, and the final name ("." and ".." included).
    public func resolveParent(_ path: String, from base: Location?,
                              credentials: Credentials) throws(Errno) -> (parent: Location, name: String, trailingSlash: Bool) {
        if path.isEmpty { throw .noSuchFileOrDirectory }
        let parts = try Self.components(path)
        guard let last = parts.last else {
            return (root, ".", true)  // "/" itself
        }
        let trailing = path.hasSuffix("/")
        var prefix = path
        // Drop trailing slashes, then the last component.
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        if let slash = prefix.lastIndex(of: "/") {
            prefix = slash == prefix.startIndex ? "/" : String(prefix[..<slash])
        } else {
            prefix = "."
        }
        let parent = try resolve(prefix, from: base, followLast: true, credentials: credentials)
        guard parent.node.kind == .directory else { throw .notDirectory }
        return (parent, last, trailing)
    }

    /// Looks up `name` in `parent` without following a final symlink; nil if absent.
    func lookupChild(_ parent: Location, _ name: String) throws(Errno) -> Location? {
        if name == "." { return parent }
        if name == ".." { return try self.parent(of: parent) }
        do {
            var node = try parent.node.lookup(name)
            let path = parent.child(name)
            if let fs = mounted(at: path) { node = fs.root }
            return Location(node: node, path: path)
        } catch .noSuchFileOrDirectory {
            return nil
        }
    }

    /// True if a file system is mounted exactly at `path`.
    func isMountPoint(_ path: String) -> Bool { mounted(at: path) != nil && path != "/" }
}
