// PollCalls.swift: poll and ppoll over every file kind's readiness; a waiting uthread
// parks and is unparked by the readiness observers of the files it waits on.
import FileSystem
import UThreads

extension Handlers {
    static func registerPoll(_ d: Dispatcher) {
        d.register(.poll) { f, p throws(LinuxError) in
            let timeout = Int32(truncatingIfNeeded: f.a2)
            return try poll(p, fds: f.a0, count: f.a1, timeoutNanoseconds: timeout < 0 ? nil : Int64(timeout) * 1_000_000)
        }
        d.register(.ppoll) { f, p throws(LinuxError) in
            var timeout: Int64?
            if f.a2 != 0 {
                timeout = try UserTimespec.loadValid(at: f.a2).totalNanoseconds
            }
            // The mask for the length of the wait, as rt_sigsuspend does.
            return try withMask(p, f.a3, f.a4) { () throws(LinuxError) in
                try poll(p, fds: f.a0, count: f.a1, timeoutNanoseconds: timeout)
            }
        }
    }

    /// struct pollfd { int fd; short events; short revents; }.
    static func poll(_ p: LinuxProcess, fds: UInt64, count: UInt64, timeoutNanoseconds: Int64?) throws(LinuxError) -> Int64 {
        guard count <= UInt64(p.descriptors.limit) else { throw LinuxError(.EINVAL) }
        let n = Int(count)
        _ = try UserMemory.buffer(fds, n * 8, for: .write)  // even for none: no kernel-half pointer
        let deadline = timeoutNanoseconds.map { MonotonicInstant.now.advanced(by: .nanoseconds($0)) }
        var files: [OpenFile?] = []
        for i in 0..<n {
            let fd = try UserMemory.load(Int32.self, at: fds + UInt64(i * 8))
            files.append(fd < 0 ? nil : try? p.descriptors.get(fd))
        }
        let me = UThread.isInUThread ? UThread.current : nil
        var tokens: [(OpenFile, Int)] = []
        defer { for (file, t) in tokens { file.handle.removeReadinessObserver(t) } }
        var polledHooks = false
        while true {
            var ready = 0
            for i in 0..<n {
                let base = fds + UInt64(i * 8)
                let fd = try UserMemory.load(Int32.self, at: base)
                let events = UInt16(bitPattern: try UserMemory.load(Int16.self, at: base + 4))
                var revents: UInt16 = 0
                if fd >= 0 {
                    if let file = files[i] {
                        let r = file.handle.readiness
                        revents = UInt16(truncatingIfNeeded: r.rawValue) & (events | 0x18)  // POLLERR|POLLHUP always
                    } else {
                        revents = 0x20  // POLLNVAL
                    }
                }
                try UserMemory.store(Int16(bitPattern: revents), at: base + 6)
                if revents != 0 { ready += 1 }
            }
            if ready > 0 {
                // A program whose poll always finds something ready never parks, so the
                // scheduler loop that runs NetStack's receive would not come round: now
                // and then the hooks run here (as epoll_wait does).
                _ = UThread.runPollHooks(every: 16)
                return Int64(ready)
            }
            if let deadline, MonotonicInstant.now >= deadline {
                // A wait that will not park: the poll hooks run first, once (epoll_wait's rule).
                if !polledHooks {
                    polledHooks = true
                    if UThread.runPollHooks() > 0 { continue }
                }
                return 0
            }
            guard let me else { return 0 }
            if tokens.isEmpty && files.contains(where: { $0 != nil }) {
                for case let file? in files {
                    tokens.append((file, file.handle.addReadinessObserver { _ in me.unpark() }))
                }
                continue  // look again: a change before the observers existed is not lost
            }
            let outcome = UThread.wait(until: deadline)
            // A signal ends the wait with EINTR (poll is never restarted after a handler).
            if outcome == .interrupted, let t = AppThread.current, p.signals.hasDeliverable(for: t) {
                throw LinuxError.restartNoHandler  // EINTR once a handler runs; restarted otherwise
            }
        }
    }
}
