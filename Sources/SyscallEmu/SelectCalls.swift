// SelectCalls.swift: select(2) and pselect6(2) over the poll machinery: the fd_sets
// become pollfds, the results go back as fd_sets; EBADF for a closed descriptor in a
// set; the timeout is updated with the time left, as Linux does.
import FileSystem
import UThreads

extension Handlers {
    static func registerSelect(_ d: Dispatcher) {
        d.register(23, "select") { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a4 != 0 {
                let sec = try UserMemory.load(Int64.self, at: f.a4), usec = try UserMemory.load(Int64.self, at: f.a4 + 8)
                guard sec >= 0, usec >= 0 else { throw LinuxError(.EINVAL) }
                timeout = sec * 1_000_000_000 + min(usec, 999_999) * 1000
            }
            let start = MonotonicInstant.now
            let r = try select(p, count: f.a0, read: f.a1, write: f.a2, except: f.a3, timeout: timeout)
            if let timeout, f.a4 != 0 {
                let left = max(0, timeout - (MonotonicInstant.now.nanoseconds - start.nanoseconds))
                try UserMemory.store(left / 1_000_000_000, at: f.a4)
                try UserMemory.store((left % 1_000_000_000) / 1000, at: f.a4 + 8)
            }
            return r
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
            let start = MonotonicInstant.now
            let r = try withMask(p, mask, size) { () throws(LinuxError) in
                try select(p, count: f.a0, read: f.a1, write: f.a2, except: f.a3, timeout: timeout)
            }
            if let timeout, f.a4 != 0 {
                let left = max(0, timeout - (MonotonicInstant.now.nanoseconds - start.nanoseconds))
                try UserMemory.store(left / 1_000_000_000, at: f.a4)
                try UserMemory.store(left % 1_000_000_000, at: f.a4 + 8)
            }
            return r
        }
    }

    static func select(_ p: LinuxProcess, count: UInt64, read: UInt64, write: UInt64, except: UInt64,
                       timeout: Int64?) throws(LinuxError) -> Int64 {
        let n = Int(Int32(truncatingIfNeeded: count))
        guard n >= 0 else { throw LinuxError(.EINVAL) }
        let limit = min(n, Int(p.descriptors.limit))
        let words = (limit + 63) / 64
        func load(_ address: UInt64) throws(LinuxError) -> [UInt64] {
            guard address != 0 else { return [UInt64](repeating: 0, count: words) }
            var out: [UInt64] = []
            for i in 0..<words { out.append(try UserMemory.load(UInt64.self, at: address + UInt64(8 * i))) }
            if limit % 64 != 0, words > 0 { out[words - 1] &= (UInt64(1) << UInt64(limit % 64)) - 1 }
            return out
        }
        let (r, w, e) = (try load(read), try load(write), try load(except))
        // pollfds in libOS memory (this address space), for the poll machinery.
        var fds: [(fd: Int32, events: Int16, revents: Int16)] = []
        for fd in 0..<limit {
            let bit = UInt64(1) << UInt64(fd % 64)
            var events: Int16 = 0
            if r[fd / 64] & bit != 0 { events |= 0x1 }
            if w[fd / 64] & bit != 0 { events |= 0x4 }
            if e[fd / 64] & bit != 0 { events |= 0x2 }
            if events != 0 {
                guard (try? p.descriptors.get(Int32(fd))) != nil else { throw LinuxError(.EBADF) }
                fds.append((Int32(fd), events, 0))
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(8, fds.count * 8), alignment: 8)
        defer { buffer.deallocate() }
        for (i, e) in fds.enumerated() {
            buffer.storeBytes(of: e.fd, toByteOffset: 8 * i, as: Int32.self)
            buffer.storeBytes(of: e.events, toByteOffset: 8 * i + 4, as: Int16.self)
            buffer.storeBytes(of: 0, toByteOffset: 8 * i + 6, as: Int16.self)
        }
        let ready = try poll(p, fds: UInt64(UInt(bitPattern: buffer.baseAddress!)), count: UInt64(fds.count), timeoutNanoseconds: timeout)
        for i in fds.indices { fds[i].revents = buffer.load(fromByteOffset: 8 * i + 6, as: Int16.self) }
        var (ro, wo, eo) = ([UInt64](repeating: 0, count: words), [UInt64](repeating: 0, count: words), [UInt64](repeating: 0, count: words))
        var total: Int64 = 0
        if ready > 0 {
            for entry in fds {
                let fd = Int(entry.fd), bit = UInt64(1) << UInt64(fd % 64), rev = entry.revents
                if entry.events & 0x1 != 0 && rev & (0x1 | 0x8 | 0x10) != 0 { ro[fd / 64] |= bit; total += 1 }
                if entry.events & 0x4 != 0 && rev & (0x4 | 0x8) != 0 { wo[fd / 64] |= bit; total += 1 }
                if entry.events & 0x2 != 0 && rev & 0x2 != 0 { eo[fd / 64] |= bit; total += 1 }
            }
        }
        for (address, set) in [(read, ro), (write, wo), (except, eo)] where address != 0 {
            for i in 0..<words { try UserMemory.store(set[i], at: address + UInt64(8 * i)) }
        }
        return total
    }
}
