// SelectCalls.swift: select and pselect6 (make's job-server loop, older programs) as
// poll over the descriptors their sets name, answered by PollCalls' poll.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // poll(2) bits.
    static let pollIn: Int16 = 1, pollPri: Int16 = 2, pollOut: Int16 = 4, pollErr: Int16 = 8, pollHup: Int16 = 16, pollNval: Int16 = 32

    static func registerSelect(_ d: Dispatcher) {
        d.register(23, "select") { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a4 != 0 {
                let sec = try UserMemory.load(Int64.self, at: f.a4), usec = try UserMemory.load(Int64.self, at: f.a4 + 8)
                guard sec >= 0, usec >= 0, usec < 1_000_000 else { throw LinuxError(.EINVAL) }
                timeout = sec * 1_000_000_000 + usec * 1000
            }
            return try select(p, count: f.a0, read: f.a1, write: f.a2, except: f.a3, timeoutNanoseconds: timeout)
        }
        d.register(270, "pselect6") { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a4 != 0 {
                let sec = try UserMemory.load(Int64.self, at: f.a4), nsec = try UserMemory.load(Int64.self, at: f.a4 + 8)
                guard sec >= 0, nsec >= 0, nsec < 1_000_000_000 else { throw LinuxError(.EINVAL) }
                timeout = sec * 1_000_000_000 + nsec
            }
            // The sixth argument: { const sigset_t *ss; size_t ss_len; }.
            var mask: UInt64 = 0, size: UInt64 = 0
            if f.a5 != 0 {
                mask = try UserMemory.load(UInt64.self, at: f.a5)
                size = try UserMemory.load(UInt64.self, at: f.a5 + 8)
            }
            return try withMask(p, mask, size) { () throws(LinuxError) in
                try select(p, count: f.a0, read: f.a1, write: f.a2, except: f.a3, timeoutNanoseconds: timeout)
            }
        }
    }

    /// The fd_sets as pollfds, poll, and the sets rewritten with what is ready.
    static func select(_ p: LinuxProcess, count: UInt64, read: UInt64, write: UInt64, except: UInt64,
                       timeoutNanoseconds: Int64?) throws(LinuxError) -> Int64 {
        guard Int64(bitPattern: count) >= 0 else { throw LinuxError(.EINVAL) }
        let n = Int(min(count, UInt64(p.descriptors.limit)))
        let words = (n + 63) / 64
        var sets: [[UInt64]] = []
        for address in [read, write, except] {
            var w = [UInt64](repeating: 0, count: words)
            if address != 0 { for i in 0..<words { w[i] = try UserMemory.load(UInt64.self, at: address + UInt64(8 * i)) } }
            sets.append(w)
        }
        func isSet(_ s: Int, _ fd: Int) -> Bool { sets[s][fd / 64] & (1 << UInt64(fd % 64)) != 0 }
        var fds: [Int32] = []
        var events: [Int16] = []
        for fd in 0..<n {
            var e: Int16 = 0
            if isSet(0, fd) { e |= pollIn }
            if isSet(1, fd) { e |= pollOut }
            if isSet(2, fd) { e |= pollPri }
            if e != 0 { fds.append(Int32(fd)); events.append(e) }
        }
        // A pollfd array in libOS memory, which poll reads and writes as it would the
        // application's.
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(8, fds.count * 8), alignment: 8)
        defer { buffer.deallocate() }
        for (i, fd) in fds.enumerated() {
            buffer.storeBytes(of: fd, toByteOffset: i * 8, as: Int32.self)
            buffer.storeBytes(of: events[i], toByteOffset: i * 8 + 4, as: Int16.self)
            buffer.storeBytes(of: Int16(0), toByteOffset: i * 8 + 6, as: Int16.self)
        }
        _ = try poll(p, fds: UInt64(UInt(bitPattern: buffer)), count: UInt64(fds.count), timeoutNanoseconds: timeoutNanoseconds)
        var out = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: 3)
        var total: Int64 = 0
        for (i, fd) in fds.enumerated() {
            let r = buffer.load(fromByteOffset: i * 8 + 6, as: Int16.self)
            if r & pollNval != 0 { throw LinuxError(.EBADF) }
            let bit = UInt64(1) << UInt64(fd % 64), w = Int(fd / 64)
            if isSet(0, Int(fd)) && r & (pollIn | pollHup | pollErr) != 0 { out[0][w] |= bit; total += 1 }
            if isSet(1, Int(fd)) && r & (pollOut | pollErr) != 0 { out[1][w] |= bit; total += 1 }
            if isSet(2, Int(fd)) && r & pollPri != 0 { out[2][w] |= bit; total += 1 }
        }
        for (s, address) in [read, write, except].enumerated() where address != 0 {
            for i in 0..<words { try UserMemory.store(out[s][i], at: address + UInt64(8 * i)) }
        }
        return total
    }
}
