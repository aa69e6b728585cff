// SendBuffer.swift: the send buffer, a byte ring allocated once with the connection: bytes
// the application wrote that the peer has not acknowledged yet, sent or not.

/// A fixed-capacity byte ring. Its first byte is the oldest unacknowledged byte of data;
/// the connection maps sequence numbers onto offsets from there.
struct SendBuffer: ~Copyable {
    private let storage: UnsafeMutableRawPointer
    let capacity: Int
    private var head = 0
    /// Bytes held.
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var free: Int { capacity - count }

    /// Appends as much of `bytes` as fits; returns the count taken.
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, free)
        guard n > 0, let base = bytes.baseAddress else { return 0 }
        let tail = (head + count) % capacity
        let first = min(n, capacity - tail)
        (storage + tail).copyMemory(from: base, byteCount: first)
        if first < n { storage.copyMemory(from: base + first, byteCount: n - first) }
        count += n
        return n
    }

    /// Copies `length` bytes starting `offset` bytes past the first into `buffer`.
    func copy(offset: Int, length: Int, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count && length <= buffer.count)
        guard length > 0, let out = buffer.baseAddress else { return }
        let start = (head + offset) % capacity
        let first = min(length, capacity - start)
        out.copyMemory(from: storage + start, byteCount: first)
        if first < length { (out + first).copyMemory(from: storage, byteCount: length - first) }
    }

    /// Drops the first `n` bytes (acknowledged).
    mutating func removeFirst(_ n: Int) {
        let n = min(n, count)
        head = (head + n) % capacity
        count -= n
        if count == 0 { head = 0 }
    }

    mutating func removeAll() { head = 0; count = 0 }
}
