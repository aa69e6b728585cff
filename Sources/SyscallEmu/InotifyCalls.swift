// InotifyCalls.swift: inotify(7). An inotify instance is a libOS file whose queue is
// fed two ways: events the VFS posts for nodes the libOS owns (MemFS), and, for HostFS
// paths, a host inotify descriptor read by a helper thread (so changes made by other
// processes show too), with host watch descriptors mapped to the instance's own.
import CJunction
import FileSystem
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Every inotify instance of the process (the VFS observer hands events to each).
final class InotifyRegistry: @unchecked Sendable {
    static let shared = InotifyRegistry()
    private let lock = SpinLock()
    private var instances: [ObjectIdentifier: Weak] = [:]
    private var installed = false
    struct Weak { weak var value: InotifyInstance? }

    func add(_ i: InotifyInstance, vfs: VFS) {
        let install = lock.withLock { () -> Bool in
            instances[ObjectIdentifier(i)] = Weak(value: i)
            defer { installed = true }
            return !installed
        }
        if install {
            FileSystemEvents.install({ node, dir, name, mask, cookie in
                for i in InotifyRegistry.shared.all() { i.vfsEvent(node, dir, name, mask, cookie) }
            }, vfs: vfs)
        }
    }

    func remove(_ i: InotifyInstance) { lock.withLock { _ = instances.removeValue(forKey: ObjectIdentifier(i)) } }
    func all() -> [InotifyInstance] { lock.withLock { instances.values.compactMap { $0.value } } }
}

final class InotifyInstance: FileHandle, @unchecked Sendable {
    static let selfEvents: UInt32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x400 | 0x800
    static let ignored: UInt32 = 0x8000, oneShot: UInt32 = 0x8000_0000
    // Tunables: Linux's default fs.inotify.max_queued_events.
    static let maxQueued = 16384

    struct Watch {
        var mask: UInt32
        var node: (any Node)?   // a libOS node
        var hostWD: Int32?      // a host watch
    }

    private let lock = SpinLock()
    private var watches: [Int32: Watch] = [:]
    private var nextWD: Int32 = 1
    private var queue: [[UInt8]] = []
    private var queued = 0
    private let readers = WaitList()
    private let observers = ReadinessObservers()
    private var hostFD: Int32 = -1
    private var wakeFD: Int32 = -1
    private var closed = false

    var isSeekable: Bool { false }

    // MARK: events

    private func encode(_ wd: Int32, _ mask: UInt32, _ cookie: UInt32, _ name: String?) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        var nameBytes = (name ?? "").pathBytes
        if name != nil { nameBytes.append(0); while nameBytes.count % 16 != 0 { nameBytes.append(0) } }
        withUnsafeBytes(of: wd) { bytes.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: mask) { bytes.replaceSubrange(4..<8, with: $0) }
        withUnsafeBytes(of: cookie) { bytes.replaceSubrange(8..<12, with: $0) }
        withUnsafeBytes(of: UInt32(nameBytes.count)) { bytes.replaceSubrange(12..<16, with: $0) }
        return bytes + nameBytes
    }

    /// Queues an event (lock held); an event equal to the last queued one merges with it.
    private func enqueue(_ event: [UInt8]) -> [Waiter] {
        if queue.last == event { return [] }
        if queue.count >= Self.maxQueued {
            // Full (fs.inotify.max_queued_events): one IN_Q_OVERFLOW (wd -1) stands for the rest.
            let overflow = encode(-1, 0x4000, 0, nil)
            if queue.last != overflow { queue.append(overflow); queued += overflow.count }
            return readers.takeAll()
        }
        queue.append(event)
        queued += event.count
        return readers.takeAll()
    }

    private func wakeAfterQueueing(_ w: [Waiter]) {
        w.wakeAll()
        observers.notify(readiness)
    }

    func vfsEvent(_ node: (any Node)?, _ dir: (any Node)?, _ name: String?, _ mask: UInt32, _ cookie: UInt32) {
        let wake = lock.withLock { () -> [Waiter] in
            var wake: [Waiter] = []
            for (wd, w) in watches.sorted(by: { $0.key < $1.key }) {
                guard let watched = w.node else { continue }
                let bits = mask & ~FileEvent.isDirectory
                var hit = false
                if let dir, watched === dir, bits & ~(FileEvent.deleteSelf | FileEvent.moveSelf) != 0, w.mask & bits != 0 {
                    wake += enqueue(encode(wd, mask, cookie, name))
                    hit = true
                }
                if let node, watched === node, bits & Self.selfEvents != 0, w.mask & bits != 0, !(dir != nil && watched === dir) {
                    wake += enqueue(encode(wd, mask, cookie, nil))
                    hit = true
                }
                // The watched object is gone, or a one-shot watch fired: IN_IGNORED.
                if let node, watched === node, bits & FileEvent.deleteSelf != 0 || (hit && w.mask & Self.oneShot != 0) {
                    watches[wd] = nil
                    wake += enqueue(encode(wd, Self.ignored, 0, nil))
                }
            }
            return wake
        }
        wakeAfterQueueing(wake)
    }

    /// Events from the host inotify descriptor, with their watch descriptors mapped.
    private func hostEvents(_ buffer: UnsafeRawBufferPointer) {
        var off = 0
        var wake: [Waiter] = []
        lock.withLock {
            while off + 16 <= buffer.count {
                let hwd = buffer.load(fromByteOffset: off, as: Int32.self)
                let mask = buffer.load(fromByteOffset: off + 4, as: UInt32.self)
                let cookie = buffer.load(fromByteOffset: off + 8, as: UInt32.self)
                let len = Int(buffer.load(fromByteOffset: off + 12, as: UInt32.self))
                let name = len == 0 ? nil : String(pathBytes: Array(buffer[(off + 16)..<(off + 16 + len)].prefix { $0 != 0 }))
                off += 16 + len
                guard let (wd, _) = watches.first(where: { $0.value.hostWD == hwd }) else { continue }
                if mask & Self.ignored != 0 { watches[wd] = nil }
                wake += enqueue(encode(wd, mask, cookie, name))
            }
        }
        wakeAfterQueueing(wake)
    }

    private func startHostReader() throws(LinuxError) -> Int32 {
        if hostFD >= 0 { return hostFD }
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw LinuxError(Errno(rawValue: errno)) }
        let wake = eventfd(0, Int32(EFD_CLOEXEC))
        hostFD = fd
        wakeFD = wake
        let me = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { ctx in
            let me = Unmanaged<InotifyInstance>.fromOpaque(ctx!).takeRetainedValue()
            me.readHost()
            return nil
        }, me)
        pthread_detach(thread)
        return fd
    }

    /// The helper thread: waits on the host inotify descriptor and the wake eventfd.
    private func readHost() {
        let (fd, wake) = lock.withLock { (hostFD, wakeFD) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate(); Glibc.close(fd); Glibc.close(wake) }
        while true {
            var p = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            _ = Glibc.poll(&p, 2, -1)
            if lock.withLock({ closed }) { return }
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { hostEvents(UnsafeRawBufferPointer(rebasing: buffer[..<n])) }
        }
    }

    // MARK: watches

    func addWatch(_ loc: Location, mask: UInt32) throws(LinuxError) -> Int32 {
        let maskCreate: UInt32 = 0x1000_0000, maskAdd: UInt32 = 0x2000_0000
        let events = mask & 0xfff
        if let hostPath = loc.hostPath {
            let fd = try lock.withLock { () throws(LinuxError) in try startHostReader() }
            let hwd = inotify_add_watch(fd, hostPath, (mask & ~(0x0100_0000 | 0x0200_0000)) | 0x0200_0000)  // already resolved: don't follow
            guard hwd >= 0 else { throw LinuxError(Errno(rawValue: errno)) }
            return lock.withLock {
                if let (wd, _) = watches.first(where: { $0.value.hostWD == hwd }) { return wd }
                let wd = nextWD
                nextWD += 1
                watches[wd] = Watch(mask: events, node: nil, hostWD: hwd)
                return wd
            }
        }
        return try lock.withLock { () throws(LinuxError) -> Int32 in
            if let (wd, w) = watches.first(where: { $0.value.node === loc.node }) {
                if mask & maskCreate != 0 { throw LinuxError(.EEXIST) }
                watches[wd]!.mask = (mask & maskAdd != 0 ? w.mask : 0) | events | (mask & Self.oneShot)
                return wd
            }
            let wd = nextWD
            nextWD += 1
            watches[wd] = Watch(mask: events | (mask & Self.oneShot), node: loc.node, hostWD: nil)
            return wd
        }
    }

    func removeWatch(_ wd: Int32) throws(LinuxError) {
        let (w, fd) = try lock.withLock { () throws(LinuxError) -> (Watch, Int32) in
            guard let w = watches[wd] else { throw LinuxError(.EINVAL) }
            return (w, hostFD)
        }
        if let hwd = w.hostWD {
            // The host queues IN_IGNORED, which the reader maps and queues.
            if inotify_rm_watch(fd, hwd) != 0 { throw LinuxError(Errno(rawValue: errno)) }
            return
        }
        let wake = lock.withLock { () -> [Waiter] in
            watches[wd] = nil
            return enqueue(encode(wd, Self.ignored, 0, nil))
        }
        wakeAfterQueueing(wake)
    }

    // MARK: FileHandle

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        while true {
            let (n, waiter) = try lock.withLock { () throws(Errno) -> (Int, Waiter?) in
                guard let first = queue.first else { return (0, nonBlocking ? nil : readers.enroll()) }
                if first.count > buffer.count { throw .invalidArgument }
                var used = 0
                while let e = queue.first, used + e.count <= buffer.count {
                    e.withUnsafeBytes { (buffer.baseAddress! + used).copyMemory(from: $0.baseAddress!, byteCount: e.count) }
                    used += e.count
                    queued -= e.count
                    queue.removeFirst()
                }
                return (used, nil)
            }
            if n > 0 { return n }
            guard let waiter else { throw .wouldBlock }
            WaitList.block(waiter)
            if WaitList.interrupted() {
                lock.withLock { readers.withdraw(waiter) }
                throw .interrupted
            }
        }
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int { throw .invalidArgument }
    func size() throws(Errno) -> Int64 { Int64(lock.withLock { queued }) }  // FIONREAD
    var readiness: Readiness { lock.withLock { queue.isEmpty ? [] : [.readable] } }
    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }

    func close() {
        let wake = lock.withLock { () -> Int32 in
            closed = true
            return wakeFD
        }
        InotifyRegistry.shared.remove(self)
        if wake >= 0 { var one: UInt64 = 1; _ = Glibc.write(wake, &one, 8) }
    }
}

extension Handlers {
    static func registerInotify(_ d: Dispatcher) {
        let create: SyscallHandler = { f, p throws(LinuxError) in
            let flags = f.number == 253 ? 0 : f.a0
            let nonBlock: UInt64 = 0o4000, cloexec: UInt64 = 0o2000000
            guard flags & ~(nonBlock | cloexec) == 0 else { throw LinuxError(.EINVAL) }
            let instance = InotifyInstance()
            InotifyRegistry.shared.add(instance, vfs: p.fs.vfs)
            var of: OpenFlags = []
            if flags & nonBlock != 0 { of.insert(.nonBlocking) }
            let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: "anon_inode:inotify"),
                                handle: instance, flags: of)
            return Int64(try p.descriptors.install(file, closeOnExec: flags & cloexec != 0))
        }
        d.register(.inotify_init, create)
        d.register(.inotify_init1, create)
        d.register(.inotify_add_watch) { f, p throws(LinuxError) in
            guard let instance = try p.fd(f.a0).handle as? InotifyInstance else { throw LinuxError(.EINVAL) }
            let mask = UInt32(truncatingIfNeeded: f.a2)
            let onlyDir: UInt32 = 0x0100_0000, dontFollow: UInt32 = 0x0200_0000
            guard mask & 0xfff != 0 else { throw LinuxError(.EINVAL) }
            guard mask & 0x3000_0000 != 0x3000_0000 else { throw LinuxError(.EINVAL) }  // MASK_ADD with MASK_CREATE
            let path = try UserMemory.string(f.a1)
            let loc = try fsCall { () throws(Errno) in try p.fs.resolve(path, followSymlinks: mask & dontFollow == 0) }
            if mask & onlyDir != 0 && loc.node.kind != .directory { throw LinuxError(.ENOTDIR) }
            try fsCall { () throws(Errno) in try p.fs.access(path, mode: 4, followSymlinks: mask & dontFollow == 0) }
            return Int64(try instance.addWatch(loc, mask: mask))
        }
        d.register(.inotify_rm_watch) { f, p throws(LinuxError) in
            guard let instance = try p.fd(f.a0).handle as? InotifyInstance else { throw LinuxError(.EINVAL) }
            try instance.removeWatch(Int32(truncatingIfNeeded: f.a1))
            return 0
        }
    }
}
