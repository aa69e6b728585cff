// SelectCalls.swift: select(2) and pselect6(2) with poll's readiness loop: the fd_sets
// become a list of descriptors and events, the results go back as fd_sets; EBADF for a closed descriptor in a
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
        let ready = try wait(p, &fds, timeout: timeout)
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

    /// The readiness loop of poll(2), on the libOS's own list: fills `revents`, returns
    /// how many entries have some; parks until an observer fires, the deadline passes,
    /// or a signal ends the wait (EINTR once a handler ran).
    static func wait(_ p: LinuxProcess, _ fds: inout [(fd: Int32, events: Int16, revents: Int16)],
                     timeout: Int64?) throws(LinuxError) -> Int64 {
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: .nanoseconds($0)) }
        let files = fds.map { try? p.descriptors.get($0.fd) }
        let me = UThread.isInUThread ? UThread.current : nil
        var tokens: [(OpenFile, Int)] = []
        defer { for (file, t) in tokens { file.handle.removeReadinessObserver(t) } }
        while true {
            var ready: Int64 = 0
            for i in fds.indices {
                guard let file = files[i] else { throw LinuxError(.EBADF) }
                let r = Int16(truncatingIfNeeded: file.handle.readiness.rawValue)
                fds[i].revents = r & (fds[i].events | 0x18)  // POLLERR|POLLHUP always
                if fds[i].revents != 0 { ready += 1 }
            }
            if ready > 0 { return ready }
            if let deadline, MonotonicInstant.now >= deadline { return 0 }
            guard let me else { return 0 }
            if tokens.isEmpty {
                for case let file? in files { tokens.append((file, file.handle.addReadinessObserver { _ in me.unpark() })) }
            }
            if let deadline { UThread.park(until: deadline) } else { UThread.park() }
            if UThread.takeInterrupt(), let t = AppThread.current, p.signals.hasDeliverable(for: t) {
                throw LinuxError.restartNoHandler
            }
        }
    }
}
