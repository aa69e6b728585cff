// HostPaths.swift: where a HostFS node lives on the host, for the socket layer: an
// AF_UNIX name on a HostFS path that no instance socket holds is a host socket file,
// reached through its host path.
import SystemPackage

public enum HostPaths {
    /// The host path of `node` when it belongs to a HostFS mount, else nil.
    public static func hostPath(of node: any Node) -> String? {
        guard let h = node as? HostNode else { return nil }
        let root = h.fs.hostRoot.hasSuffix("/") ? String(h.fs.hostRoot.dropLast()) : h.fs.hostRoot
        return h.path == "." ? (root.isEmpty ? "/" : root) : root + "/" + h.path
    }

    /// The host path a VFS path names when the directory it is in belongs to a HostFS
    /// mount (the last component need not exist), else nil.
    public static func hostPath(of path: String, in fs: FileSystemContext) -> String? {
        guard let (parent, name, _) = try? fs.vfs.resolveParent(path, from: fs.cwd, credentials: fs.credentials),
              let dir = hostPath(of: parent.node) else { return nil }
        if name == "." { return dir }
        return dir == "/" ? "/" + name : dir + "/" + name
    }
}

extension Location {
    /// The absolute host path of a HostFS node; nil for other file systems.
    public var hostPath: String? {
        guard let node = node as? HostNode else { return nil }
        let root = node.fs.hostRoot == "/" ? "" : node.fs.hostRoot
        return node.path == "." ? (root.isEmpty ? "/" : root) : root + "/" + node.path
    }
}
