// PacketPool.swift: fixed-size packet buffers carved from one contiguous region, a
// shared free list behind a spin lock, and a per-kthread cache in front of it.
import CNICQueues
import Glibc
import Logging
import NUMA
import UThreads

// Per-kthread caches: a thread's cache is chosen by its ordinal (kthreads are OS threads
// and a pool call never parks), so the common alloc/free touches no shared cache line.
// Threads past `maxCaches` use the shared list directly.
@usableFromInline let maxCaches = 32
/// Words between two caches' counters: one 64-byte line each, no false sharing.
@usableFromInline let cacheCountStride = 16
/// Largest per-thread cache; a small pool gets count/16 so caches cannot starve it.
let maxCacheCapacity: UInt32 = 64

/// A buffer index meaning "none".
@usableFromInline package let noBuffer: UInt32 = .max

/// The pool's state, at a fixed address that buffer handles point to.
@usableFromInline
package struct PoolCore {
    @usableFromInline package var base: UnsafeMutableRawPointer
    @usableFromInline package var bufferSize: UInt32
    @usableFromInline package var headroom: UInt32
    @usableFromInline package var count: UInt32
    @usableFromInline package var cacheCapacity: UInt32
    /// The runtime's one short-section lock (it yields to a preempted holder).
    @usableFromInline package var lock: UnsafeMutablePointer<SpinLock>
    @usableFromInline package var freeList: UnsafeMutablePointer<UInt32>
    @usableFromInline package var freeCount: UnsafeMutablePointer<UInt32>
    @usableFromInline package var cacheCounts: UnsafeMutablePointer<UInt32>
    @usableFromInline package var cacheSlots: UnsafeMutablePointer<UInt32>

    @inlinable @inline(__always)
    package static func address(_ c: UnsafeMutablePointer<PoolCore>, _ index: UInt32) -> UnsafeMutableRawPointer {
        c.pointee.base + Int(index) &* Int(c.pointee.bufferSize)
    }

    /// Takes a free buffer index, or `noBuffer`.
    @inlinable
    package static func allocate(_ c: UnsafeMutablePointer<PoolCore>) -> UInt32 {
        let o = Int(cnq_thread_ordinal())
        let cap = c.pointee.cacheCapacity
        if o < maxCaches && cap > 0 {
            let n = c.pointee.cacheCounts + o &* cacheCountStride
            if n.pointee == 0 { refill(c, o) }
            if n.pointee == 0 { return noBuffer }
            n.pointee &-= 1
            return c.pointee.cacheSlots[o &* Int(cap) &+ Int(n.pointee)]
        }
        c.pointee.lock.pointee.lock()
        defer { c.pointee.lock.pointee.unlock() }
        let f = c.pointee.freeCount
        if f.pointee == 0 { return noBuffer }
        f.pointee &-= 1
        return c.pointee.freeList[Int(f.pointee)]
    }

    /// Returns a buffer index to the pool.
    @inlinable
    package static func free(_ c: UnsafeMutablePointer<PoolCore>, _ index: UInt32) {
        let o = Int(cnq_thread_ordinal())
        let cap = c.pointee.cacheCapacity
        if o < maxCaches && cap > 0 {
            let n = c.pointee.cacheCounts + o &* cacheCountStride
            if n.pointee == cap { flush(c, o) }
            c.pointee.cacheSlots[o &* Int(cap) &+ Int(n.pointee)] = index
            n.pointee &+= 1
            return
        }
        c.pointee.lock.pointee.lock()
        let f = c.pointee.freeCount
        c.pointee.freeList[Int(f.pointee)] = index
        f.pointee &+= 1
        c.pointee.lock.pointee.unlock()
    }

    /// Moves half a cache's worth from the shared list into thread `o`'s cache.
    @usableFromInline
    package static func refill(_ c: UnsafeMutablePointer<PoolCore>, _ o: Int) {
        let cap = Int(c.pointee.cacheCapacity)
        let n = c.pointee.cacheCounts + o &* cacheCountStride
        let slots = c.pointee.cacheSlots + o &* cap
        c.pointee.lock.pointee.lock()
        let f = c.pointee.freeCount
        let take = min(cap / 2, Int(f.pointee))
        for i in 0..<take { slots[Int(n.pointee) &+ i] = c.pointee.freeList[Int(f.pointee) &- 1 &- i] }
        f.pointee &-= UInt32(take)
        c.pointee.lock.pointee.unlock()
        n.pointee &+= UInt32(take)
    }

    /// Moves half of thread `o`'s full cache back to the shared list.
    @usableFromInline
    package static func flush(_ c: UnsafeMutablePointer<PoolCore>, _ o: Int) {
        let cap = Int(c.pointee.cacheCapacity)
        let n = c.pointee.cacheCounts + o &* cacheCountStride
        let slots = c.pointee.cacheSlots + o &* cap
        let give = cap / 2
        c.pointee.lock.pointee.lock()
        let f = c.pointee.freeCount
        for i in 0..<give { c.pointee.freeList[Int(f.pointee) &+ i] = slots[Int(n.pointee) &- 1 &- i] }
        f.pointee &+= UInt32(give)
        c.pointee.lock.pointee.unlock()
        n.pointee &-= UInt32(give)
    }
}

/// A pool of fixed-size packet buffers in one contiguous region (registered with the
/// device where the backend needs it: the AF_XDP UMEM, the ibverbs memory region, the
/// shared-memory file). Buffers are handed out as ``PacketBuffer`` handles that return
/// themselves when dropped; nothing is allocated per packet.
public final class PacketPool: @unchecked Sendable {
    @usableFromInline package let core: UnsafeMutablePointer<PoolCore>
    /// The pool's name, for messages.
    public let name: String
    /// The region the buffers live in, and whether this pool unmaps it.
    package let regionBase: UnsafeMutableRawPointer
    package let regionSize: Int
    let ownsRegion: Bool
    /// NICQueues' diagnostics (a pool released with buffers out).
    static let logger = Logger(label: "junction.nicqueues")

    /// A pool over a fresh anonymous region of `count` buffers of `bufferSize` bytes.
    /// - Parameters:
    ///   - name: the pool's name, in diagnostics.
    ///   - bufferSize: bytes per buffer, headroom included.
    ///   - count: how many buffers.
    ///   - headroom: bytes left free in front of a new buffer's data, for headers.
    ///   - numaNode: the node the buffers' memory is placed on (nil: where first touched).
    public convenience init(name: String, bufferSize: Int = 2048, count: Int = 4096, headroom: Int = 128,
                            numaNode: NUMANode? = nil) throws(NICError) {
        guard bufferSize >= 64, bufferSize <= 1 << 18, count > 0, count < Int(UInt32.max), headroom >= 0, headroom < bufferSize - 60 else {
            throw .invalidConfiguration("pool \(name): \(count) buffers of \(bufferSize) bytes with \(headroom) headroom")
        }
        let size = (bufferSize * count + 4095) & ~4095
        let m = try Mapping.anonymous(size: size, what: "packet pool \(name)", node: numaNode)
        let base = m.release()   // the pool unmaps it in deinit
        self.init(name: name, region: base, regionSize: size, owns: true, buffers: base, bufferSize: bufferSize, count: count, headroom: headroom)
    }

    /// A pool over `count` buffers at `buffers`, inside a region someone else keeps
    /// mapped for at least the pool's lifetime, or this pool unmaps (`owns`).
    init(name: String, region: UnsafeMutableRawPointer, regionSize: Int, owns: Bool,
         buffers: UnsafeMutableRawPointer, bufferSize: Int, count: Int, headroom: Int) {
        self.name = name
        regionBase = region
        self.regionSize = regionSize
        ownsRegion = owns
        let cacheCapacity = min(maxCacheCapacity, UInt32(count / 16)) & ~1
        let lock = UnsafeMutablePointer<SpinLock>.allocate(capacity: 1)
        lock.initialize(to: SpinLock())
        let free = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        let freeList = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
        for i in 0..<count { freeList[i] = UInt32(count - 1 - i) }   // buffer 0 first
        free.initialize(to: UInt32(count))
        let counts = UnsafeMutablePointer<UInt32>.allocate(capacity: maxCaches * cacheCountStride)
        counts.initialize(repeating: 0, count: maxCaches * cacheCountStride)
        let slots = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, maxCaches * Int(cacheCapacity)))
        core = .allocate(capacity: 1)
        core.initialize(to: PoolCore(base: buffers, bufferSize: UInt32(bufferSize), headroom: UInt32(headroom),
                                     count: UInt32(count), cacheCapacity: cacheCapacity, lock: lock,
                                     freeList: freeList, freeCount: free, cacheCounts: counts, cacheSlots: slots))
    }

    deinit {
        let outstanding = count - freeCount
        core.pointee.freeList.deallocate()
        core.pointee.cacheCounts.deallocate()
        core.pointee.cacheSlots.deallocate()
        core.pointee.lock.deinitialize(count: 1)
        core.pointee.lock.deallocate()
        core.pointee.freeCount.deallocate()
        // Buffers still out would point at freed memory: keep the region mapped (a leak,
        // reported) rather than let a stray handle write into someone else's page.
        if outstanding != 0 {
            Self.logger.warning("NICQueues: pool \(name) released with \(outstanding) buffers still in use; its memory is kept mapped")
        } else {
            core.deallocate()
            if ownsRegion { munmap(regionBase, regionSize) }
        }
    }

    /// Bytes per buffer, headroom included.
    public var bufferSize: Int { Int(core.pointee.bufferSize) }
    /// Headroom left in front of a freshly allocated buffer's data.
    public var headroom: Int { Int(core.pointee.headroom) }
    /// Buffers in the pool.
    public var count: Int { Int(core.pointee.count) }
    /// Largest frame a fresh buffer takes.
    public var frameCapacity: Int { bufferSize - headroom }
    /// Free buffers right now (shared list plus every thread's cache).
    public var freeCount: Int {
        core.pointee.lock.pointee.lock()
        var n = Int(core.pointee.freeCount.pointee)
        core.pointee.lock.pointee.unlock()
        for o in 0..<maxCaches { n += Int(cnq_load_relaxed32(core.pointee.cacheCounts + o * cacheCountStride)) }
        return n
    }

    /// A free buffer with no data and `headroom` bytes in front, or nil if none is left.
    @inlinable
    public func allocate() -> PacketBuffer? {
        let i = PoolCore.allocate(core)
        if i == noBuffer { return nil }
        return PacketBuffer(core: core, index: i, start: core.pointee.headroom, length: 0)
    }

    /// A buffer holding a copy of `bytes`.
    public func allocate(copying bytes: UnsafeRawBufferPointer) throws(NICError) -> PacketBuffer {
        guard bytes.count <= frameCapacity else { throw .frameTooLarge(length: bytes.count, capacity: frameCapacity) }
        guard var b = allocate() else { throw .poolExhausted(name) }
        b.unsafeSetLength(bytes.count)
        if let src = bytes.baseAddress, bytes.count > 0 { b.unsafeData.copyMemory(from: src, byteCount: bytes.count) }
        return b
    }

    /// A buffer holding a copy of `bytes`.
    public func allocate(copying bytes: [UInt8]) throws(NICError) -> PacketBuffer {
        guard bytes.count <= frameCapacity else { throw .frameTooLarge(length: bytes.count, capacity: frameCapacity) }
        guard var b = allocate() else { throw .poolExhausted(name) }
        b.unsafeSetLength(bytes.count)
        let dst = b.unsafeData
        bytes.withUnsafeBytes { if let src = $0.baseAddress { dst.copyMemory(from: src, byteCount: $0.count) } }
        return b
    }

    /// Fills a batch with up to `n` empty buffers; returns how many it added.
    @discardableResult
    public func allocate(_ n: Int, into batch: inout PacketBatch) -> Int {
        var added = 0
        while added < n && !batch.isFull {
            let i = PoolCore.allocate(core)
            if i == noBuffer { break }
            batch.appendRaw(core, i, core.pointee.headroom, 0)
            added += 1
        }
        return added
    }

    /// The buffer index of `address` in this pool's region, if it lies in one.
    @inline(__always)
    func index(ofOffset offset: UInt64) -> (index: UInt32, start: UInt32) {
        let bs = UInt64(core.pointee.bufferSize)
        return (UInt32(offset / bs), UInt32(offset % bs))
    }
}
