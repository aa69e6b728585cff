// PacketBuffer.swift: the noncopyable handle to one pool buffer (returns itself to the
// pool when dropped) and PacketBatch, the caller-provided array of handles that devices
// receive into and transmit from.
import CNICQueues

/// One packet buffer from a ``PacketPool``: `headroom` bytes, the frame, then tailroom.
/// Dropping the handle returns the buffer to its pool. The pool must outlive its handles.
@frozen
public struct PacketBuffer: ~Copyable {
    @usableFromInline let core: UnsafeMutablePointer<PoolCore>
    @usableFromInline let index: UInt32
    @usableFromInline package var start: UInt32
    @usableFromInline var count: UInt32

    @inlinable
    init(core: UnsafeMutablePointer<PoolCore>, index: UInt32, start: UInt32, length: UInt32) {
        self.core = core
        self.index = index
        self.start = start
        self.count = length
    }

    deinit { PoolCore.free(core, index) }

    /// Bytes of frame data.
    @inlinable public var length: Int { Int(count) }
    /// Free bytes in front of the data (for headers to prepend).
    @inlinable public var headroom: Int { Int(start) }
    /// Free bytes after the data.
    @inlinable public var tailroom: Int { Int(core.pointee.bufferSize) - Int(start) - Int(count) }

    /// The first byte of the data. Valid while this handle lives.
    @inlinable public var unsafeData: UnsafeMutableRawPointer { PoolCore.address(core, index) + Int(start) }

    @inlinable
    mutating func unsafeSetLength(_ n: Int) { count = UInt32(n) }

    /// Sets the data length (bytes beyond the old length are left as they are).
    public mutating func setLength(_ n: Int) throws(NICError) {
        guard n >= 0, n <= Int(core.pointee.bufferSize) - Int(start) else {
            throw .frameTooLarge(length: n, capacity: Int(core.pointee.bufferSize) - Int(start))
        }
        count = UInt32(n)
    }

    /// Grows the data at the front by `n` bytes of headroom (a header to fill in).
    public mutating func prepend(_ n: Int) throws(NICError) {
        guard n >= 0, n <= Int(start) else { throw .frameTooLarge(length: n, capacity: Int(start)) }
        start -= UInt32(n)
        count += UInt32(n)
    }

    /// Drops `n` bytes from the front (a parsed header).
    public mutating func trimFront(_ n: Int) throws(NICError) {
        guard n >= 0, n <= Int(count) else { throw .frameTooLarge(length: n, capacity: Int(count)) }
        start += UInt32(n)
        count -= UInt32(n)
    }

    /// Replaces the data with a copy of `bytes` (the headroom is kept).
    public mutating func replace(with bytes: UnsafeRawBufferPointer) throws(NICError) {
        try setLength(bytes.count)
        if let src = bytes.baseAddress, bytes.count > 0 { unsafeData.copyMemory(from: src, byteCount: bytes.count) }
    }

    /// Replaces the data with a copy of `bytes`.
    public mutating func replace(with bytes: [UInt8]) throws(NICError) {
        try setLength(bytes.count)
        let dst = unsafeData
        bytes.withUnsafeBytes { if let src = $0.baseAddress { dst.copyMemory(from: src, byteCount: $0.count) } }
    }

    /// Reads the data.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: unsafeData, count: Int(count)))
    }

    /// Reads and writes the data in place.
    @inlinable
    public mutating func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: unsafeData, count: Int(count)))
    }

    /// A copy of the data (allocates; for tests and diagnostics).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Hands the buffer over without returning it to the pool.
    @inlinable
    consuming func release() -> (core: UnsafeMutablePointer<PoolCore>, index: UInt32, start: UInt32, length: UInt32) {
        let r = (core, index, start, count)
        discard self
        return r
    }
}

/// One entry of a batch: which pool, which buffer, where its data is.
@usableFromInline
package struct BatchEntry {
    @usableFromInline package var core: UnsafeMutablePointer<PoolCore>
    @usableFromInline package var index: UInt32
    @usableFromInline package var start: UInt32
    @usableFromInline package var length: UInt32

    @inlinable package init(core: UnsafeMutablePointer<PoolCore>, index: UInt32, start: UInt32, length: UInt32) {
        self.core = core; self.index = index; self.start = start; self.length = length
    }

    @inlinable package var data: UnsafeMutableRawPointer { PoolCore.address(core, index) + Int(start) }
}

/// A fixed-capacity FIFO of packet buffers, allocated once by the caller and reused for
/// every batch: devices append what they receive and take what they transmit from the
/// front. Buffers left in a batch return to their pools when it is dropped.
public struct PacketBatch: ~Copyable {
    @usableFromInline let entries: UnsafeMutablePointer<BatchEntry>
    @usableFromInline var head: Int = 0
    @usableFromInline var used: Int = 0
    /// Most buffers the batch holds.
    public let capacity: Int

    public init(capacity: Int = 32) {
        precondition(capacity > 0, "PacketBatch capacity must be positive")
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
    }

    deinit {
        for i in head..<(head + used) { PoolCore.free(entries[i].core, entries[i].index) }
        entries.deallocate()
    }

    @inlinable public var count: Int { used }
    @inlinable public var isEmpty: Bool { used == 0 }
    @inlinable public var isFull: Bool { used == capacity }
    /// Room left at the back.
    @inlinable public var freeSpace: Int { capacity - used }

    /// Appends a buffer. The batch must not be full.
    @inlinable
    public mutating func append(_ buffer: consuming PacketBuffer) {
        precondition(!isFull, "PacketBatch.append: batch is full")
        let r = buffer.release()
        appendRaw(r.core, r.index, r.start, r.length)
    }

    @inlinable
    package mutating func appendRaw(_ core: UnsafeMutablePointer<PoolCore>, _ index: UInt32, _ start: UInt32, _ length: UInt32) {
        precondition(used < capacity, "PacketBatch: appending to a full batch")
        if head + used == capacity { compact() }
        entries[head + used] = BatchEntry(core: core, index: index, start: start, length: length)
        used += 1
    }

    /// Moves the entries to the front, making room at the back.
    @inlinable
    mutating func compact() {
        if head == 0 { return }
        entries.update(from: entries + head, count: used)
        head = 0
    }

    /// Takes the first buffer, or nil when empty.
    @inlinable
    public mutating func popFirst() -> PacketBuffer? {
        if used == 0 { return nil }
        let e = entries[head]
        head += 1
        used -= 1
        if used == 0 { head = 0 }
        return PacketBuffer(core: e.core, index: e.index, start: e.start, length: e.length)
    }

    /// Drops every buffer (back to their pools).
    public mutating func removeAll() {
        for i in head..<(head + used) { PoolCore.free(entries[i].core, entries[i].index) }
        head = 0
        used = 0
    }

    /// The length of the `i`th frame.
    @inlinable public func length(at i: Int) -> Int {
        precondition(i >= 0 && i < used, "PacketBatch index out of range")
        return Int(entries[head + i].length)
    }

    /// Reads the `i`th frame.
    @inlinable
    public func withBytes<R, E: Error>(at i: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(i >= 0 && i < used, "PacketBatch index out of range")
        let e = entries[head + i]
        return try body(UnsafeRawBufferPointer(start: e.data, count: Int(e.length)))
    }

    /// Reads and writes the `i`th frame in place.
    @inlinable
    public mutating func withMutableBytes<R, E: Error>(at i: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(i >= 0 && i < used, "PacketBatch index out of range")
        let e = entries[head + i]
        return try body(UnsafeMutableRawBufferPointer(start: e.data, count: Int(e.length)))
    }

    /// Sets the length of the `i`th frame (within its buffer).
    @inlinable
    public mutating func setLength(_ n: Int, at i: Int) throws(NICError) {
        precondition(i >= 0 && i < used, "PacketBatch index out of range")
        let e = entries[head + i]
        let room = Int(e.core.pointee.bufferSize) - Int(e.start)
        guard n >= 0, n <= room else { throw .frameTooLarge(length: n, capacity: room) }
        entries[head + i].length = UInt32(n)
    }

    // MARK: for devices

    /// The entry at position `i` from the front.
    @inlinable package func entry(_ i: Int) -> BatchEntry { entries[head + i] }

    @inlinable package mutating func setEntry(_ i: Int, _ e: BatchEntry) { entries[head + i] = e }

    /// Forgets the first `n` entries: their buffers now belong to a device.
    @inlinable
    package mutating func dropFirst(handedOver n: Int) {
        head += n
        used -= n
        if used == 0 { head = 0 }
    }
}

extension PacketBatch {
    /// Drops the first buffer back to its pool.
    @inlinable
    package mutating func removeFirstAndFree() {
        let e = entries[head]
        PoolCore.free(e.core, e.index)
        dropFirst(handedOver: 1)
    }
}
