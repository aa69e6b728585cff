// SelectCalls.swift: select and pselect6 over every file kind's readiness (the sets as
// Linux's POLLIN_SET/POLLOUT_SET/POLLEX_SET read them), the time left written back, a
// waiting uthread parked and unparked by the files' readiness observers.
import FileSystem
import UThreads

extension Handlers {
    static func registerSelect(_ d: Dispatcher) {
        d.register(.select) { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a4 != 0 {
                let sec = try UserMemory.load(Int64.self, at: f.a4), usec = try UserMemory.load(Int64.self, at: f.a4 + 8)
                // Normalized as kern_select does; only a negative result is EINVAL.
                let (s, ns) = (sec &+ usec / 1_000_000, (usec % 1_000_000) * 1000)
                guard s >= 0, ns >= 0 else { throw LinuxError(.EINVAL) }
                timeout = s > Int64.max / 1_000_000_000 - 1 ? nil : s * 1_000_000_000 + ns
            }
            let start = MonotonicInstant.now
            let r = try select(p, count: f.a0, sets: (f.a1, f.a2, f.a3), timeout: timeout)
            if let timeout {  // the time left, as Linux writes it back
                let left = max(0, timeout - (MonotonicInstant.now.nanoseconds - start.nanoseconds))
                try UserMemory.store(left / 1_000_000_000, at: f.a4)
                try UserMemory.store((left % 1_000_000_000) / 1000, at: f.a4 + 8)
            }
            return r
        }
        d.register(.pselect6) { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a4 != 0 { timeout = try UserTimespec.loadValid(at: f.a4).totalNanoseconds }
            // The sixth argument: { const sigset_t *ss; size_t ss_len; }.
            var mask: UInt64 = 0, maskSize: UInt64 = 0
            if f.a5 != 0 {
                mask = try UserMemory.load(UInt64.self, at: f.a5)
                maskSize = try UserMemory.load(UInt64.self, at: f.a5 + 8)
            }
            let start = MonotonicInstant.now
            let r = try withMask(p, mask, maskSize) { () throws(LinuxError) in
                try select(p, count: f.a0, sets: (f.a1, f.a2, f.a3), timeout: timeout)
            }
            if let timeout {
                let left = max(0, timeout - (MonotonicInstant.now.nanoseconds - start.nanoseconds))
                try UserMemory.store(left / 1_000_000_000, at: f.a4)
                try UserMemory.store(left % 1_000_000_000, at: f.a4 + 8)
            }
            return r
        }
    }

    /// Linux's fdtable size (max_fds), which select clamps nfds to: 64 descriptors at first,
    /// then power-of-two multiples of 128 past the highest one ever open (alloc_fdtable;
    /// the table never shrinks).
    static func tableSize(_ p: LinuxProcess) -> Int32 {
        let highest = max(0, p.descriptors.highestEverInstalled)
        if highest < 64 { return 64 }
        var n: Int32 = 1
        while n < (highest + 1) / 128 + 1 { n <<= 1 }
        return min(n * 128, p.descriptors.limit)
    }

    /// The three fd_sets: checks them (EBADF for a set bit without a file), waits until
    /// one file is ready, the timeout or a signal, and writes back the ready bits.
    static func select(_ p: LinuxProcess, count: UInt64, sets: (UInt64, UInt64, UInt64), timeout: Int64?) throws(LinuxError) -> Int64 {
        let n = Int32(truncatingIfNeeded: count)
        guard n >= 0 else { throw LinuxError(.EINVAL) }
        let nfds = Int(min(n, tableSize(p)))
        let words = (nfds + 63) / 64
        let addresses = [sets.0, sets.1, sets.2]
        var input: [[UInt64]] = []
        for a in addresses {
            var w = [UInt64](repeating: 0, count: words)
            if a != 0 && words > 0 {
                let src = try UserMemory.pointer(a, words * 8, for: .write)
                for i in 0..<words { w[i] = src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) }
                // Bits past nfds are not looked at (and come back cleared).
                if nfds % 64 != 0 { w[words - 1] &= (UInt64(1) << UInt64(nfds % 64)) - 1 }
            }
            input.append(w)
        }
        var files: [(Int, OpenFile)] = []
        for fd in 0..<nfds {
            let bit = UInt64(1) << UInt64(fd % 64)
            if (input[0][fd / 64] | input[1][fd / 64] | input[2][fd / 64]) & bit == 0 { continue }
            files.append((fd, try p.descriptors.get(Int32(fd))))
        }
        let deadline = timeout.map { MonotonicInstant.now.advanced(by: .nanoseconds($0)) }
        let me = UThread.isInUThread ? UThread.current : nil
        var tokens: [(OpenFile, Int)] = []
        defer { for (file, t) in tokens { file.handle.removeReadinessObserver(t) } }
        var polledHooks = false
        while true {
            var output = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: 3)
            var ready: Int64 = 0
            for (fd, file) in files {
                let r = file.handle.readiness.rawValue
                let bit = UInt64(1) << UInt64(fd % 64)
                // POLLIN_SET: IN|HUP|ERR; POLLOUT_SET: OUT|ERR; POLLEX_SET: PRI.
                let hits = [r & 0x019 != 0, r & 0x00c != 0, r & 0x002 != 0]
                for k in 0..<3 where input[k][fd / 64] & bit != 0 && hits[k] {
                    output[k][fd / 64] |= bit
                    ready += 1
                }
            }
            let expired = deadline.map { MonotonicInstant.now >= $0 } ?? false
            // The poll hooks (NetStack's receive) run now and then when select finds
            // something ready, and once before a wait that will not park (epoll_wait's rule).
            if ready > 0 {
                _ = UThread.runPollHooks(every: 16)
            } else if expired && !polledHooks {
                polledHooks = true
                if UThread.runPollHooks() > 0 { continue }
            }
            if ready > 0 || expired || me == nil {
                for (k, a) in addresses.enumerated() where a != 0 && words > 0 {
                    let dst = try UserMemory.pointer(a, words * 8, for: .write)
                    for i in 0..<words { dst.storeBytes(of: output[k][i], toByteOffset: 8 * i, as: UInt64.self) }
                }
                return ready
            }
            if tokens.isEmpty && !files.isEmpty {
                // Observers first, then look again: a change in between is not lost.
                for (_, file) in files { tokens.append((file, file.handle.addReadinessObserver { _ in me!.unpark() })) }
                continue
            }
            let outcome = UThread.wait(until: deadline)
            if outcome == .interrupted, let t = AppThread.current, p.signals.hasDeliverable(for: t) {
                throw LinuxError.restartNoHandler
            }
        }
    }
}
