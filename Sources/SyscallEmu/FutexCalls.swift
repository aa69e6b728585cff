// FutexCalls.swift: futex(2) on the UThreads wait table: WAIT, WAKE, WAIT_BITSET,
// WAKE_BITSET, REQUEUE, CMP_REQUEUE and WAKE_OP, private or not, timeouts on both clocks.
import CJunction
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    /// Replaced in a forked child (ForkCalls.swift).
    // Tunables: how often a shared futex's waiter looks at the word for a wake from
    // another process.
    static let sharedFutexPoll: Duration = .milliseconds(1)

    nonisolated(unsafe) static var futexTable = WaitTable(bucketCount: 1024)

    static func registerFutex(_ d: Dispatcher) {
        d.register(.futex) { f, p throws(LinuxError) in try futex(f, p) }
    }

    static func futex(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let op = Int32(truncatingIfNeeded: f.a1)
        let cmd = op & 127  // without FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256)
        let realtime = op & 256 != 0
        let address = f.a0
        // Linux's order (sys_futex, do_futex, get_futex_key): the timeout of a waiting
        // command (EFAULT, EINVAL), CLOCK_REALTIME with a command that has no clock and
        // an unknown command (ENOSYS), a zero bitset, the word's alignment (EINVAL),
        // access_ok (EFAULT), then the word itself.
        let bit = UInt64(1) << UInt64(cmd)  // 0 for commands past 63
        var timeout: UserTimespec?
        if f.a3 != 0 && bit & 0b10_1010_0100_0001 != 0 {  // WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
            timeout = try UserTimespec.loadValid(at: f.a3)
        }
        if realtime && bit & 0b10_1010_0000_0000 == 0 { throw LinuxError(.ENOSYS) }  // WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
        guard bit & 0b110_0011_1011 != 0 else { throw LinuxError(.ENOSYS) }  // the commands below
        if (cmd == 9 || cmd == 10) && f.a5 & 0xffff_ffff == 0 { throw LinuxError(.EINVAL) }
        guard address & 3 == 0 else { throw LinuxError(.EINVAL) }
        guard UserMemory.accessOK(address, 4) else { throw LinuxError(.EFAULT) }
        // A private wake never touches the word (its key is the address alone); a shared
        // key needs the page, and a read-only anonymous page is EFAULT there.
        let privateWake = op & 128 != 0 && (cmd == 1 || cmd == 10)
        if privateWake && address == 0 { return 0 }  // nothing can wait there
        let word = privateWake ? UnsafeMutablePointer<UInt32>(bitPattern: UInt(address))!
            : try UserMemory.pointer(address, 4, for: op & 128 != 0 ? .read : .write).assumingMemoryBound(to: UInt32.self)
        let val = UInt32(truncatingIfNeeded: f.a2)
        switch cmd {
        case 0, 9:  // WAIT (relative timeout), WAIT_BITSET (absolute)
            let bitset = cmd == 9 ? UInt32(truncatingIfNeeded: f.a5) : WaitTable.matchAny
            var deadline: MonotonicInstant?
            if let timeout {
                let ns = timeout.totalNanoseconds
                if cmd == 0 {
                    deadline = timeout.deadlineFromNow
                } else if realtime {
                    var now = timespec()
                    clock_gettime(CLOCK_REALTIME, &now)
                    let delta = ns - (Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))
                    deadline = MonotonicInstant.now.advanced(by: .nanoseconds(delta))
                } else {
                    deadline = MonotonicInstant(nanoseconds: ns)
                }
            }
            // A shared futex once the instance has more than one process: a waker may be in
            // another process (a sem_post on a MAP_SHARED page), whose wake this table never
            // sees; the wait re-reads the word every sharedFutexPoll and returns (a spurious
            // wake-up, which callers allow) once it changed.
            let polled = op & 128 == 0 && LinuxProcess.multiProcess
            while true {
                let slice = polled ? min(deadline ?? .now.advanced(by: sharedFutexPoll), .now.advanced(by: sharedFutexPoll)) : deadline
                switch futexTable.wait(on: word, expected: val, deadline: slice, bitset: bitset) {
                case .woken: return 0
                case .valueMismatch: throw LinuxError(.EAGAIN)
                case .timedOut where polled && (deadline.map { MonotonicInstant.now < $0 } ?? true):
                    if cj_load_acquire_u32(word) != val { return 0 }
                case .timedOut: throw LinuxError(.ETIMEDOUT)
                case .interrupted: try p.checkInterrupted(.restartSys)  // else wait again
                }
            }
        case 1, 10:  // WAKE, WAKE_BITSET
            let bitset = cmd == 10 ? UInt32(truncatingIfNeeded: f.a5) : WaitTable.matchAny
            guard bitset != 0 else { throw LinuxError(.EINVAL) }
            return Int64(futexTable.wake(UnsafeRawPointer(word), count: Int(clamping: Int32(bitPattern: val)), bitset: bitset))
        case 3, 4:  // REQUEUE, CMP_REQUEUE
            let target = try UserMemory.pointer(f.a4, 4, for: .read)
            let requeueCount = Int(clamping: Int32(truncatingIfNeeded: f.a3))
            guard Int32(bitPattern: val) >= 0, requeueCount >= 0 else { throw LinuxError(.EINVAL) }
            let expected: UInt32? = cmd == 4 ? UInt32(truncatingIfNeeded: f.a5) : nil
            guard let n = futexTable.requeue(from: word, to: UnsafeRawPointer(target), wakeCount: Int(val),
                                             requeueCount: requeueCount, expected: expected) else {
                throw LinuxError(.EAGAIN)
            }
            return Int64(n)
        case 5:  // WAKE_OP
            let word2 = try UserMemory.pointer(f.a4, 4, for: .write).assumingMemoryBound(to: UInt32.self)
            let encoded = UInt32(truncatingIfNeeded: f.a5)
            let opKind = (encoded >> 28) & 7, shiftArg = encoded & (8 << 28) != 0
            let cmpKind = (encoded >> 24) & 15
            var oparg = (encoded >> 12) & 0xFFF, cmparg = encoded & 0xFFF
            if shiftArg { oparg = 1 << (oparg & 31) }
            // Sign-extend the 12-bit fields as Linux does.
            if oparg & 0x800 != 0 && !shiftArg { oparg |= 0xFFFF_F000 }
            if cmparg & 0x800 != 0 { cmparg |= 0xFFFF_F000 }
            let atomic = UnsafeMutableRawPointer(word2)
            var old: UInt32 = 0
            while true {
                old = cj_load_acquire_u32(word2)
                let new: UInt32
                switch opKind {
                case 0: new = oparg
                case 1: new = old &+ oparg
                case 2: new = old | oparg
                case 3: new = old & ~oparg
                case 4: new = old ^ oparg
                default: throw LinuxError(.ENOSYS)
                }
                if cj_cas_u32(atomic.assumingMemoryBound(to: UInt32.self), old, new) { break }
            }
            var woken = futexTable.wake(UnsafeRawPointer(word), count: Int(clamping: Int32(bitPattern: val)))
            let o = Int32(bitPattern: old), c = Int32(bitPattern: cmparg)
            let hit: Bool
            switch cmpKind {
            case 0: hit = o == c
            case 1: hit = o != c
            case 2: hit = o < c
            case 3: hit = o <= c
            case 4: hit = o > c
            case 5: hit = o >= c
            default: throw LinuxError(.ENOSYS)
            }
            if hit { woken += futexTable.wake(UnsafeRawPointer(word2), count: Int(clamping: Int32(truncatingIfNeeded: f.a3))) }
            return Int64(woken)
        default:
            throw LinuxError(.ENOSYS)
        }
    }
}
