// Events.swift: file system events for inotify, posted by the VFS operations on nodes
// the libOS owns (MemFS and the like). HostFS nodes post nothing: the host's own
// inotify reports their changes, ours and everyone else's.
import Synchronization

/// inotify(7) event bits the VFS posts.
public enum FileEvent {
    public static let access: UInt32 = 0x1, modify: UInt32 = 0x2, attrib: UInt32 = 0x4
    public static let closeWrite: UInt32 = 0x8, closeNoWrite: UInt32 = 0x10, open: UInt32 = 0x20
    public static let movedFrom: UInt32 = 0x40, movedTo: UInt32 = 0x80, create: UInt32 = 0x100
    public static let delete: UInt32 = 0x200, deleteSelf: UInt32 = 0x400, moveSelf: UInt32 = 0x800
    public static let isDirectory: UInt32 = 0x4000_0000
}

/// Where the VFS sends events: one observer (inotify), checked with one relaxed load.
public enum FileSystemEvents {
    /// - Parameters: the node the event is about (nil when gone), its directory and its
    ///   name there (nil for events only the node itself reports), the mask and the
    ///   rename cookie.
    public typealias Observer = @Sendable (_ node: (any Node)?, _ directory: (any Node)?, _ name: String?,
                                           _ mask: UInt32, _ cookie: UInt32) -> Void

    private static let enabled = Atomic<Bool>(false)
    nonisolated(unsafe) private static var observer: Observer?
    nonisolated(unsafe) private static var vfs: VFS?
    private static let cookies = Atomic<UInt32>(0)

    /// Installs the observer (once, before the first watch).
    public static func install(_ o: @escaping Observer, vfs namespace: VFS) {
        observer = o
        vfs = namespace
        enabled.store(true, ordering: .releasing)
    }

    @inline(__always)
    static var active: Bool { enabled.load(ordering: .relaxed) }

    static func nextCookie() -> UInt32 { cookies.add(1, ordering: .relaxed).newValue }

    /// An event on `node`, reported to its own watches and to its directory's.
    static func post(_ node: (any Node)?, in directory: (any Node)?, name: String?, _ mask: UInt32, cookie: UInt32 = 0) {
        guard active, let o = observer else { return }
        if node is HostNode || directory is HostNode { return }
        var m = mask
        if node?.kind == .directory { m |= FileEvent.isDirectory }
        o(node, directory, name, m, cookie)
    }

    /// An event on the object at `loc`, reported to its directory's watches too when
    /// that directory still holds it under its name.
    static func post(_ loc: Location, _ mask: UInt32) {
        guard active, !(loc.node is HostNode), let vfs else { return }
        var dir: (any Node)?
        let name = loc.path.split(separator: "/").last.map(String.init)
        if loc.path.hasPrefix("/"), loc.path != "/", let name, let parent = try? vfs.parent(of: loc),
           let child = try? parent.node.lookup(name), child === loc.node {
            dir = parent.node
        }
        post(loc.node, in: dir, name: dir == nil ? nil : name, mask)
    }
}
