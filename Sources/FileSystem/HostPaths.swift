// HostPaths.swift: the host path behind a HostFS location, for the calls the libOS
// passes to the host by name (extended attributes, inotify watches).
extension Location {
    /// The absolute host path of a HostFS node; nil for other file systems.
    public var hostPath: String? {
        guard let node = node as? HostNode else { return nil }
        let root = node.fs.hostRoot == "/" ? "" : node.fs.hostRoot
        return node.path == "." ? (root.isEmpty ? "/" : root) : root + "/" + node.path
    }
}
