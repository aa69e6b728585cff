// ReceiveBuffer.swift: the receive buffer, a byte ring allocated once with the connection:
// in-order bytes the application has not read, and after them, at their offset from
// RCV.NXT, out-of-order bytes waiting for the hole before them to fill. The out-of-order
// ranges live in a small preallocated list that also yields the SACK blocks (RFC 2018).

/// Out-of-order ranges kept at most; a segment that would need one more is dropped. With
/// full-sized segments and the default 256 KiB limit, 64 holes is far beyond what a sane
/// path produces; the bound keeps the per-segment work small.
let outOfOrderRangeCapacity = 64

struct ReceiveBuffer: ~Copyable {
    private let storage: UnsafeMutableRawPointer
    /// The configured size (SO_RCVBUF): what window advertisements are computed from.
    let capacity: Int
    /// Bytes the ring holds beyond `capacity`: one window-scaling unit, so a window that
    /// scaling rounded up (it must not shrink, RFC 7323 §2.4) never offers more than the
    /// ring can store (the sender may fill every byte we offered).
    let slack: Int
    private var physical: Int { capacity + slack }
    private var head = 0
    /// In-order bytes ready for the application.
    private(set) var count = 0

    /// Out-of-order ranges [start, end), disjoint, not touching, sorted by start, with the
    /// stamp of the last segment that added to each (RFC 2018 §4 orders SACK blocks by it).
    private let ranges: UnsafeMutablePointer<SACKBlock>
    private let stamps: UnsafeMutablePointer<UInt64>
    private(set) var rangeCount = 0
    private var clock: UInt64 = 0
    /// Bytes held out of order.
    private(set) var outOfOrderBytes = 0

    init(capacity: Int, slack: Int = 0) {
        self.capacity = max(capacity, 1)
        self.slack = max(slack, 0)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity + self.slack, alignment: 16)
        ranges = .allocate(capacity: outOfOrderRangeCapacity)
        stamps = .allocate(capacity: outOfOrderRangeCapacity)
    }

    deinit {
        storage.deallocate()
        ranges.deallocate()
        stamps.deallocate()
    }

    /// Space after the in-order bytes that can be stored (out-of-order bytes sit in it):
    /// the hard ceiling of any window.
    var free: Int { physical - count }

    /// Space after the in-order bytes by the configured size: what a new window offers.
    var windowSpace: Int { max(capacity - count, 0) }

    /// Copies `bytes` to `offset` bytes past the in-order data (offset 0 is RCV.NXT).
    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= free)
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let start = (head + count + offset) % physical
        let first = min(bytes.count, physical - start)
        (storage + start).copyMemory(from: base, byteCount: first)
        if first < bytes.count { storage.copyMemory(from: base + first, byteCount: bytes.count - first) }
    }

    /// Makes `n` bytes written at offset 0 readable.
    mutating func commit(_ n: Int) {
        precondition(n >= 0 && n <= free)
        count += n
    }

    /// Copies up to `buffer.count` in-order bytes out and drops them.
    @discardableResult
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = peek(into: buffer)
        head = (head + n) % physical
        count -= n
        return n
    }

    func peek(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, count)
        guard n > 0, let out = buffer.baseAddress else { return 0 }
        let first = min(n, physical - head)
        out.copyMemory(from: storage + head, byteCount: first)
        if first < n { (out + first).copyMemory(from: storage, byteCount: n - first) }
        return n
    }

    /// Drops everything (abort, or close with unread data).
    mutating func removeAll() {
        head = 0; count = 0; rangeCount = 0; outOfOrderBytes = 0
    }

    // MARK: out-of-order ranges

    /// Records [start, end) as held out of order, merging with neighbours. False (and
    /// nothing recorded) when it needs a new range and the list is full.
    mutating func insertRange(_ start: SequenceNumber, _ end: SequenceNumber) -> Bool {
        clock += 1
        // First range that ends at or after start (it may touch or overlap).
        var i = 0
        while i < rangeCount && ranges[i].end < start { i += 1 }
        if i == rangeCount || ranges[i].start > end {
            guard rangeCount < outOfOrderRangeCapacity else { return false }
            var j = rangeCount
            while j > i { ranges[j] = ranges[j - 1]; stamps[j] = stamps[j - 1]; j -= 1 }
            ranges[i] = SACKBlock(start: start, end: end)
            stamps[i] = clock
            rangeCount += 1
            outOfOrderBytes += end - start
            return true
        }
        // Merge into range i, then swallow the ranges that now touch it.
        var merged = ranges[i]
        outOfOrderBytes -= merged.end - merged.start
        merged.start = SequenceNumber.min(merged.start, start)
        merged.end = SequenceNumber.max(merged.end, end)
        var k = i + 1
        while k < rangeCount && ranges[k].start <= merged.end {
            outOfOrderBytes -= ranges[k].end - ranges[k].start
            merged.end = SequenceNumber.max(merged.end, ranges[k].end)
            k += 1
        }
        let removed = k - (i + 1)
        if removed > 0 {
            var j = i + 1
            while j + removed < rangeCount { ranges[j] = ranges[j + removed]; stamps[j] = stamps[j + removed]; j += 1 }
            rangeCount -= removed
        }
        ranges[i] = merged
        stamps[i] = clock
        outOfOrderBytes += merged.end - merged.start
        return true
    }

    /// After RCV.NXT moved to `next`: removes the ranges it reached and returns how far
    /// the in-order data now extends past `next` (0 when the hole is still open).
    mutating func takeContiguous(at next: SequenceNumber) -> Int {
        var extra = 0
        var removed = 0
        while removed < rangeCount && ranges[removed].start <= next {
            let r = ranges[removed]
            outOfOrderBytes -= r.end - r.start
            if r.end - next > extra { extra = r.end - next }
            removed += 1
        }
        if removed > 0 {
            for j in 0..<(rangeCount - removed) { ranges[j] = ranges[j + removed]; stamps[j] = stamps[j + removed] }
            rangeCount -= removed
        }
        return extra
    }

    /// Whether [start, end) is wholly held out of order already.
    func holds(_ start: SequenceNumber, _ end: SequenceNumber) -> Bool {
        for i in 0..<rangeCount where ranges[i].start <= start && end <= ranges[i].end { return true }
        return false
    }

    /// The highest sequence number held out of order, if any.
    var highestHeld: SequenceNumber? { rangeCount > 0 ? ranges[rangeCount - 1].end : nil }

    /// Up to `limit` SACK blocks, the most recently changed range first (RFC 2018 §4).
    func sackBlocks(limit: Int) -> SACKBlocks {
        var blocks = SACKBlocks()
        var below = UInt64.max
        while blocks.count < min(limit, rangeCount) {
            var best = -1
            for i in 0..<rangeCount where stamps[i] < below && (best < 0 || stamps[i] > stamps[best]) { best = i }
            guard best >= 0 else { break }
            blocks.append(ranges[best])
            below = stamps[best]
        }
        return blocks
    }
}
