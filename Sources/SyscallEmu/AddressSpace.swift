// AddressSpace.swift: which parts of this process's address space are the
// application's: its program, interpreter and stack as loaded, and what its own mmap,
// mremap and munmap calls made or removed. /proc/self/maps shows the host's lines for
// these ranges only (the libOS's own code, heap and stacks share the process but are
// not the application's), with the program break as [heap].
import FileSystem
import UThreads

#if canImport(Glibc)
import Glibc
#endif

public final class AddressSpace: @unchecked Sendable {
    private let lock = SpinLock()
    /// Disjoint, sorted, page-aligned ranges.
    @exclusivity(unchecked) private var ranges: [Range<UInt64>] = []
    /// The main thread's stack (shown as [stack]).
    @exclusivity(unchecked) public private(set) var stack: Range<UInt64> = 0..<0

    public init() {}

    static func pageRange(_ start: UInt64, _ length: UInt64) -> Range<UInt64>? {
        guard length > 0, start & 4095 == 0 else { return nil }
        let (end, overflow) = start.addingReportingOverflow((length + 4095) & ~4095)
        return overflow ? nil : start..<end
    }

    public func setStack(_ r: Range<UInt64>) {
        lock.withLock { stack = r }
        add(r)
    }

    /// Records `r` as the application's (merging with neighbours). A binary search and
    /// one replacement: a program with 20,000 threads has as many ranges.
    public func add(_ r: Range<UInt64>) {
        guard !r.isEmpty else { return }
        lock.withLock {
            // [first, last): the ranges touching or overlapping r.
            let first = firstIndex { $0.upperBound >= r.lowerBound }
            var last = first
            while last < ranges.count && ranges[last].lowerBound <= r.upperBound { last += 1 }
            var merged = r
            if first < last {
                merged = min(r.lowerBound, ranges[first].lowerBound)..<max(r.upperBound, ranges[last - 1].upperBound)
            }
            ranges.replaceSubrange(first..<last, with: CollectionOfOne(merged))
        }
    }

    /// Forgets `r` (munmap, the old place of a moved mremap).
    public func remove(_ r: Range<UInt64>) {
        guard !r.isEmpty else { return }
        lock.withLock {
            // [first, last): the ranges overlapping r; what sticks out of r stays.
            let first = firstIndex { $0.upperBound > r.lowerBound }
            var last = first
            while last < ranges.count && ranges[last].lowerBound < r.upperBound { last += 1 }
            guard first < last else { return }
            var kept: [Range<UInt64>] = []
            if ranges[first].lowerBound < r.lowerBound { kept.append(ranges[first].lowerBound..<r.lowerBound) }
            if ranges[last - 1].upperBound > r.upperBound { kept.append(r.upperBound..<ranges[last - 1].upperBound) }
            ranges.replaceSubrange(first..<last, with: kept)
        }
    }

    /// The first index whose range satisfies `above` (monotonic over the sorted ranges).
    private func firstIndex(_ above: (Range<UInt64>) -> Bool) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if above(ranges[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    public func removeAll(_ body: (Range<UInt64>) -> Void) {
        let all = lock.withLock { () -> [Range<UInt64>] in
            defer { ranges = []; stack = 0..<0 }
            return ranges
        }
        for r in all { body(r) }
    }

    /// Whether every byte of [start, end) is the application's (one binary search: the
    /// ranges are sorted and touching ones are merged).
    public func contains(_ start: UInt64, _ end: UInt64) -> Bool {
        lock.withLock {
            var lo = 0, hi = ranges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ranges[mid].upperBound <= start { lo = mid + 1 } else { hi = mid }
            }
            return lo < ranges.count && ranges[lo].lowerBound <= start && end <= ranges[lo].upperBound
        }
    }

    /// How many bytes from `start` on (at most `limit`) are the application's without a gap.
    public func ownedLength(from start: UInt64, limit: UInt64) -> UInt64 {
        lock.withLock {
            var lo = 0, hi = ranges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ranges[mid].upperBound <= start { lo = mid + 1 } else { hi = mid }
            }
            guard lo < ranges.count, ranges[lo].lowerBound <= start else { return 0 }
            return min(limit, ranges[lo].upperBound - start)
        }
    }

    /// The parts of `r` that are not the application's.
    public func gaps(in r: Range<UInt64>) -> [Range<UInt64>] {
        lock.withLock {
            var out: [Range<UInt64>] = []
            var at = r.lowerBound
            for x in ranges where x.upperBound > at && x.lowerBound < r.upperBound {
                if x.lowerBound > at { out.append(at..<x.lowerBound) }
                at = max(at, x.upperBound)
            }
            if at < r.upperBound { out.append(at..<r.upperBound) }
            return out
        }
    }

    /// Whether some byte of `r` is the application's.
    /// The application range (or the stack) holding `address`, if any.
    public func range(containing address: UInt64) -> Range<UInt64>? {
        lock.withLock { stack.contains(address) ? stack : ranges.first { $0.contains(address) } }
    }

    public func overlaps(_ r: Range<UInt64>) -> Bool { lock.withLock { ranges.contains { $0.overlaps(r) } } }

    /// /proc/self/maps: the host's lines clipped to the application's ranges, plus the
    /// heap up to the break and the kernel's [vdso], [vvar] and [vsyscall].
    public func mapsText(heap: Range<UInt64>) -> String {
        let mine = lock.withLock { ranges }
        let stack = lock.withLock { self.stack }
        var lines: [MapsLine] = []
        for text in ProcFS.hostLines("/proc/self/maps") {
            let fields = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let lo = UInt64(bounds[0], radix: 16), let hi = UInt64(bounds[1], radix: 16) else { continue }
            let name = fields.count > 5 ? String(fields[5]).trimmingLeadingSpaces() : ""
            let (perms, device, inode) = (String(fields[1]), String(fields[3]), String(fields[4]))
            let offset = UInt64(fields[2], radix: 16) ?? 0
            if ["[vdso]", "[vvar]", "[vsyscall]"].contains(name) {
                lines.append(MapsLine(range: lo..<hi, perms: perms, offset: 0, device: device, inode: inode, label: name))
                continue
            }
            var pieces: [(Range<UInt64>, String)] = []
            for r in mine where r.overlaps(lo..<hi) {
                pieces.append((max(r.lowerBound, lo)..<min(r.upperBound, hi), name))
            }
            if heap.overlaps(lo..<hi) { pieces.append((max(heap.lowerBound, lo)..<min(heap.upperBound, hi), "[heap]")) }
            for (r, n) in pieces {
                let label = stack.overlaps(r) && n.isEmpty ? "[stack]" : n
                // The offset moves with the clipped start for file mappings.
                let isFile = !name.isEmpty && !name.hasPrefix("[")
                lines.append(MapsLine(range: r, perms: perms, offset: isFile ? offset + (r.lowerBound - lo) : offset,
                                      device: device, inode: inode, label: label))
            }
        }
        // Call-site rewriting splits a program's text into several mappings (pages it
        // wrote are private copies now); Linux shows one line for what it mapped once.
        var merged: [MapsLine] = []
        for l in lines {
            if var last = merged.last, last.range.upperBound == l.range.lowerBound, last.perms == l.perms,
               last.device == l.device, last.inode == l.inode, last.label == l.label,
               last.inode == "0" || last.offset + UInt64(last.range.count) == l.offset {
                last.range = last.range.lowerBound..<l.range.upperBound
                merged[merged.count - 1] = last
            } else {
                merged.append(l)
            }
        }
        return merged.map(\.text).joined()
    }
}

struct MapsLine {
    var range: Range<UInt64>
    var perms: String
    var offset: UInt64
    var device: String
    var inode: String
    var label: String

    var text: String {
        var head = hex(range.lowerBound, 8) + "-" + hex(range.upperBound, 8) + " \(perms) \(hex(offset, 8)) \(device) \(inode) "
        if !label.isEmpty {
            if head.count < 73 { head += String(repeating: " ", count: 73 - head.count) }  // Linux pads to column 73
            head += label
        }
        return head + "\n"
    }
}

/// Lowercase hex, at least `width` digits.
func hex(_ v: UInt64, _ width: Int) -> String {
    let s = String(v, radix: 16)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

extension String {
    func trimmingSuffix(_ s: String) -> String { hasSuffix(s) ? String(dropLast(s.count)) : self }
    func trimmingLeadingSpaces() -> String { String(drop { $0 == " " }) }
}
