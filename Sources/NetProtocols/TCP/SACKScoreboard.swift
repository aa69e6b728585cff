// SACKScoreboard.swift: the sender's record of what the peer has SACKed above SND.UNA
// (RFC 6675 §3), and from it IsLost, the pipe estimate and NextSeg's choice of hole.

/// SACKed ranges kept at most; past it the highest is forgotten (conservative: those bytes
/// only look unSACKed, so at worst they are resent).
let scoreboardCapacity = 32

/// RFC 6675's DupThresh.
let duplicateThreshold = 3

struct SACKScoreboard: ~Copyable {
    /// Disjoint, non-touching ranges sorted by start, all above SND.UNA.
    private let ranges: UnsafeMutablePointer<SACKBlock>
    private(set) var count = 0

    init() { ranges = .allocate(capacity: scoreboardCapacity) }
    deinit { ranges.deallocate() }

    var isEmpty: Bool { count == 0 }
    mutating func removeAll() { count = 0 }

    subscript(i: Int) -> SACKBlock { ranges[i] }

    /// Total SACKed bytes.
    var sackedBytes: Int {
        var n = 0
        for i in 0..<count { n += ranges[i].end - ranges[i].start }
        return n
    }

    /// Adds the blocks of an ACK, ignoring any not wholly within (una, max] (RFC 2018 §8:
    /// blocks below the cumulative ACK are D-SACKs or stale). Returns whether anything new
    /// was SACKed.
    @discardableResult
    mutating func add(_ blocks: SACKBlocks, una: SequenceNumber, max sndMax: SequenceNumber) -> Bool {
        var changed = false
        // Indices, not `for in`: the iterator goes through Collection's witnesses, which an
        // unspecialized build allocates for.
        for i in 0..<blocks.count {
            let b = blocks[i]
            if b.start < b.end && b.start >= una && b.end <= sndMax && insert(b) { changed = true }
        }
        return changed
    }

    private mutating func insert(_ b: SACKBlock) -> Bool {
        var i = 0
        while i < count && ranges[i].end < b.start { i += 1 }
        if i < count && ranges[i].start <= b.start && b.end <= ranges[i].end { return false }
        if i == count || ranges[i].start > b.end {
            if count == scoreboardCapacity {
                // Full: forget the highest range (or this one, if it is higher).
                if i == count { return false }
                count -= 1
            }
            var j = count
            while j > i { ranges[j] = ranges[j - 1]; j -= 1 }
            ranges[i] = b
            count += 1
            return true
        }
        var merged = ranges[i]
        merged.start = SequenceNumber.min(merged.start, b.start)
        merged.end = SequenceNumber.max(merged.end, b.end)
        var k = i + 1
        while k < count && ranges[k].start <= merged.end {
            merged.end = SequenceNumber.max(merged.end, ranges[k].end)
            k += 1
        }
        let removed = k - (i + 1)
        if removed > 0 {
            var j = i + 1
            while j + removed < count { ranges[j] = ranges[j + removed]; j += 1 }
            count -= removed
        }
        ranges[i] = merged
        return true
    }

    /// Drops what the cumulative ACK now covers.
    mutating func advance(to una: SequenceNumber) {
        var removed = 0
        while removed < count && ranges[removed].end <= una { removed += 1 }
        if removed > 0 {
            for j in 0..<(count - removed) { ranges[j] = ranges[j + removed] }
            count -= removed
        }
        if count > 0 && ranges[0].start < una { ranges[0].start = una }
    }

    /// SACKed bytes below `limit`.
    func sackedBytes(below limit: SequenceNumber) -> Int {
        var n = 0
        for i in 0..<count where ranges[i].start < limit {
            n += SequenceNumber.min(ranges[i].end, limit) - ranges[i].start
        }
        return n
    }

    /// Whether `seq` is SACKed.
    func isSACKed(_ seq: SequenceNumber) -> Bool {
        for i in 0..<count where ranges[i].start <= seq && seq < ranges[i].end { return true }
        return false
    }

    /// The end of the SACKed range holding `seq`, or `seq` when it is not SACKed.
    func skipSACKed(_ seq: SequenceNumber) -> SequenceNumber {
        for i in 0..<count where ranges[i].start <= seq && seq < ranges[i].end { return ranges[i].end }
        return seq
    }

    /// RFC 6675 §4 IsLost: an unSACKed byte is lost when DupThresh discontiguous ranges or
    /// more than (DupThresh − 1) × SMSS bytes above it are SACKed. Both counts only grow
    /// as the byte gets lower, so "lost" is everything unSACKed below one boundary; this
    /// returns it (bytes below it that are not SACKed are lost).
    func lossBoundary(mss: Int) -> SequenceNumber? {
        var bytes = 0
        var blocks = 0
        var i = count - 1
        while i >= 0 {
            bytes += ranges[i].end - ranges[i].start
            blocks += 1
            if blocks >= duplicateThreshold || bytes > (duplicateThreshold - 1) * mss { return ranges[i].start }
            i -= 1
        }
        return nil
    }

    /// RFC 6675 §4 SetPipe: for each unSACKed byte in [una, max): one if it is not lost,
    /// one more if it was retransmitted (below `highRxt`).
    func pipe(una: SequenceNumber, max sndMax: SequenceNumber, highRxt: SequenceNumber, mss: Int) -> Int {
        let boundary = lossBoundary(mss: mss) ?? una
        var pipe = 0
        var cursor = una
        var i = 0
        while cursor < sndMax {
            let holeEnd = i < count ? ranges[i].start : sndMax
            if cursor < holeEnd {
                pipe += Self.overlap(cursor, holeEnd, boundary, sndMax)     // not lost
                pipe += Self.overlap(cursor, holeEnd, una, highRxt)         // retransmitted
            }
            guard i < count else { break }
            cursor = ranges[i].end
            i += 1
        }
        return pipe
    }

    /// RFC 6675 §4 NextSeg rule 1: the first unSACKed, lost byte at or above `from`, and
    /// the end of its hole.
    func nextLostHole(from: SequenceNumber, una: SequenceNumber, mss: Int) -> (start: SequenceNumber, end: SequenceNumber)? {
        guard let boundary = lossBoundary(mss: mss) else { return nil }
        var cursor = SequenceNumber.max(from, una)
        for i in 0..<count {
            let r = ranges[i]
            if cursor < r.start {
                let end = SequenceNumber.min(r.start, boundary)
                return cursor < end ? (cursor, r.start) : nil
            }
            if cursor < r.end { cursor = r.end }
        }
        return nil
    }

    /// RFC 6675 §4 NextSeg rule 3: the first unSACKed byte at or above `from` below the
    /// highest SACKed byte, lost or not, and the end of its hole.
    func nextHole(from: SequenceNumber, una: SequenceNumber) -> (start: SequenceNumber, end: SequenceNumber)? {
        var cursor = SequenceNumber.max(from, una)
        for i in 0..<count {
            let r = ranges[i]
            if cursor < r.start { return (cursor, r.start) }
            if cursor < r.end { cursor = r.end }
        }
        return nil
    }

    private static func overlap(_ a: SequenceNumber, _ b: SequenceNumber, _ c: SequenceNumber, _ d: SequenceNumber) -> Int {
        let lo = SequenceNumber.max(a, c), hi = SequenceNumber.min(b, d)
        return lo < hi ? hi - lo : 0
    }
}
