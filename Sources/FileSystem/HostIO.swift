// HostIO.swift: host file calls through a per-kthread io_uring: a uthread queues its
// request and parks; submissions are batched while other uthreads are runnable; the
// kthread's poll hook submits, reaps completions and unparks their uthreads. Without a
// runtime, or where io_uring is unavailable, calls go straight to the kernel.
import CUThreads
import CURing
import Logging
import NUMA
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Where HostFS sends its blocking calls.
public final class HostIO: @unchecked Sendable {
    // Tunables.
    /// Submission queue entries per kthread ring.
    static let ringEntries: UInt32 = 256
    /// Submit at once when this many requests wait, even if other uthreads could run.
    static let batchLimit = 32

    /// Per-kthread ring state, touched only by that kthread (its uthreads and its hook).
    struct RingState {
        var ring: OpaquePointer
        var eventFD: Int32
        var pending = 0
        var signalMayBeStale = false
        var submitted: UInt64 = 0
        var completed: UInt64 = 0
        var batches: UInt64 = 0
    }

    /// A request's completion, on the waiting uthread's stack.
    struct Completion {
        var result: Int32 = 0
        var done: UInt32 = 0
        var waiter: UThreadRef
    }

    public enum Mode: Sendable, Equatable {
        /// Blocking calls from uthreads go through io_uring.
        case ioUring
        /// io_uring could not be set up (the reason); every call is a direct system call.
        case direct(String)
    }

    /// One kthread's ring and its poll hook. A slot is written only by its own kthread
    /// (or before the runtime runs uthreads that use this HostIO), read by statistics.
    struct Slot {
        var ring: UnsafeMutablePointer<RingState>?
        var hook: PollHookToken?
        /// io_uring could not be set up for this kthread: its calls go direct.
        var failed = false
    }

    public private(set) var mode: Mode
    private var runtime: Runtime?
    /// A slot per kthread of `runtime` (`slotCount` of them). The parent fills every slot
    /// at init; a forked child's slots start empty and each kthread makes its ring on its
    /// first call (most children exec or exit without a host file call).
    private var slots: UnsafeMutablePointer<Slot>?
    private var slotCount = 0

    /// Every HostIO with rings (weakly), for a forked child to give each new ones.
    private static let registryLock = SpinLock()
    nonisolated(unsafe) private static var registry: [ObjectIdentifier: Weak] = [:]
    struct Weak { weak var io: HostIO? }

    nonisolated(unsafe) private static var warned = false
    private static let warnLock = SpinLock()
    /// FileSystem's diagnostics (the io_uring fallback).
    static let logger = Logger(label: "junction.filesystem")

    /// Direct system calls only (no runtime to park on).
    public init() {
        runtime = nil
        mode = .direct("no runtime")
    }

    /// One io_uring per kthread of `runtime`, reaped by a poll hook on each kthread.
    public init(runtime: Runtime) {
        self.runtime = runtime
        mode = .direct("starting")
        setUpRings()
        Self.registryLock.withLock { Self.registry[ObjectIdentifier(self)] = Weak(io: self) }
    }

    /// In a forked child, on its new runtime: the parent's rings are mapped shared with
    /// the parent, so they are left alone (never unmapped or closed here: that would only
    /// drop this process's references) and each HostIO gets empty slots: a kthread makes
    /// its ring and poll hook on its first call (`lazyRing`), so a child that execs or
    /// exits at once makes none (io_uring_setup and the eventfd registration cost about
    /// as much as the rest of the fork).
    public static func afterFork(runtime: Runtime) {
        let all = registryLock.withLock { registry.values.compactMap(\.io) }
        for io in all {
            if let slots = io.slots {
                for i in 0..<io.slotCount { slots[i].ring?.deallocate() }  // the state block only
                slots.deinitialize(count: io.slotCount)
                slots.deallocate()
            }
            io.slots = nil
            io.slotCount = 0
            io.runtime = runtime
            guard io.mode == .ioUring else { continue }
            io.makeSlots(runtime.kthreadCount)
        }
    }

    private func makeSlots(_ n: Int) {
        let slots = UnsafeMutablePointer<Slot>.allocate(capacity: n)
        slots.initialize(repeating: Slot(), count: n)
        self.slots = slots
        slotCount = n
    }

    /// One ring on the runtime's NUMA node with its eventfd registered, or the failure.
    private static func makeRing(_ runtime: Runtime) -> Result<UnsafeMutablePointer<RingState>, HostIOSetupFailure> {
        var error: Int32 = 0
        guard let ring = NUMA.withPreferred(runtime.configuration.numaNode, { cju_ring_create(Self.ringEntries, &error) }) else {
            return .failure(HostIOSetupFailure(message: "io_uring_setup: \(Errno(rawValue: -error))"))
        }
        let efd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        let rc = efd < 0 ? -errno : cju_ring_register_eventfd(ring, efd)
        if rc < 0 {
            cju_ring_destroy(ring)
            if efd >= 0 { close(efd) }
            return .failure(HostIOSetupFailure(message: "io_uring_register_eventfd: \(Errno(rawValue: -rc))"))
        }
        let state = UnsafeMutablePointer<RingState>.allocate(capacity: 1)
        state.initialize(to: RingState(ring: ring, eventFD: efd))
        return .success(state)
    }

    private func addHook(_ r: UnsafeMutablePointer<RingState>, kthread k: Int) -> PollHookToken? {
        let ringState = UnsafeSendable(r)
        return try? runtime?.addPollHook(PollHook(name: "io_uring", fd: r.pointee.eventFD) {
            HostIO.poll(ringState.value)
        }, kthread: k, wake: false)  // a new ring has nothing to reap
    }

    private func setUpRings() {
        guard let runtime else { return }
        var made: [UnsafeMutablePointer<RingState>] = []
        var failure: String?
        for _ in 0..<runtime.kthreadCount {
            switch Self.makeRing(runtime) {
            case .success(let r): made.append(r)
            case .failure(let f): failure = f.message
            }
            if failure != nil { break }
        }
        if let failure {
            for r in made { Self.destroy(r) }
            mode = .direct(failure)
            Self.warnOnce("FileSystem: io_uring is unavailable (\(failure)); HostFS falls back to direct system calls, "
                + "which block a kthread. To enable it: sysctl kernel.io_uring_disabled=0, and allow io_uring_setup "
                + "in any seccomp policy.")
            return
        }
        mode = .ioUring
        makeSlots(made.count)
        for (k, r) in made.enumerated() {
            slots![k] = Slot(ring: r, hook: addHook(r, kthread: k))
        }
    }

    /// The calling kthread's ring, made now if this is its first call since a fork; nil
    /// if io_uring cannot be set up here (the call then goes direct).
    @inline(__always)
    private func ring(_ slots: UnsafeMutablePointer<Slot>, _ k: Int) -> UnsafeMutablePointer<RingState>? {
        if let r = slots[k].ring { return r }
        return lazyRing(slots, k)
    }

    @inline(never)
    private func lazyRing(_ slots: UnsafeMutablePointer<Slot>, _ k: Int) -> UnsafeMutablePointer<RingState>? {
        guard !slots[k].failed, let runtime else { return nil }
        switch Self.makeRing(runtime) {
        case .success(let r):
            slots[k].hook = addHook(r, kthread: k)
            slots[k].ring = r
            return r
        case .failure(let f):
            slots[k].failed = true
            Self.warnOnce("FileSystem: io_uring is unavailable in a forked child (\(f.message)); HostFS calls on one of its kthreads go straight to the kernel.")
            return nil
        }
    }

    deinit {
        Self.registryLock.withLock { _ = Self.registry.removeValue(forKey: ObjectIdentifier(self)) }
        if let slots {
            for i in 0..<slotCount {
                if let runtime, let h = slots[i].hook { runtime.removePollHook(h) }
                if let r = slots[i].ring { Self.destroy(r) }
            }
            slots.deinitialize(count: slotCount)
            slots.deallocate()
        }
    }

    private static func destroy(_ r: UnsafeMutablePointer<RingState>) {
        cju_ring_destroy(r.pointee.ring)
        close(r.pointee.eventFD)
        r.deinitialize(count: 1)
        r.deallocate()
    }

    static func warnOnce(_ message: String) {
        warnLock.withLock {
            if warned { return }
            warned = true
            logger.warning("\(message)")
        }
    }

    /// Counters: requests submitted and completed through io_uring, and submit calls.
    public var statistics: (submitted: UInt64, completed: UInt64, batches: UInt64) {
        guard let slots else { return (0, 0, 0) }
        return (0..<slotCount).compactMap { slots[$0].ring }
            .reduce((0, 0, 0)) { ($0.0 + $1.pointee.submitted, $0.1 + $1.pointee.completed, $0.2 + $1.pointee.batches) }
    }

    /// Runs one request: through the caller's kthread's ring when the caller is a uthread
    /// of this runtime, otherwise with `direct`. Both return the result or -errno.
    @inline(__always)
    /// `prepare` fills the SQE and must pass the user-data value it is given.
    func perform(_ prepare: (OpaquePointer, UInt64) -> Void, direct: () -> Int32) -> Int32 {
        guard let slots, UThread.isInUThread, let k = UThread.kthreadIndex, k < slotCount,
              runtime.map({ UThread.isOn($0) }) == true, let r = ring(slots, k) else {
            return direct()
        }
        var completion = Completion(waiter: UThread.current)
        return withUnsafeMutablePointer(to: &completion) { c -> Int32 in
            var sqe = cju_get_sqe(r.pointee.ring)
            if sqe == nil {
                Self.submit(r)
                sqe = cju_get_sqe(r.pointee.ring)
            }
            guard let sqe else { return direct() }
            prepare(sqe, UInt64(UInt(bitPattern: c)))
            r.pointee.pending += 1
            // Batch while other uthreads can run here; the poll hook submits the batch
            // when the kthread next passes through its scheduler.
            if r.pointee.pending >= Self.batchLimit || UThread.runnableOnCurrentKThread == 0 {
                Self.submit(r)
                // Reap before parking: cached reads and many metadata calls complete
                // inline during the submit, and then this uthread need not park at all.
                _ = Self.poll(r, caller: c)
            }
            while cj_load_acquire_u32(&c.pointee.done) == 0 { UThread.park() }
            return c.pointee.result
        }
    }

    private static func submit(_ r: UnsafeMutablePointer<RingState>) {
        guard r.pointee.pending > 0 else { return }
        let n = cju_submit(r.pointee.ring)
        if n > 0 {
            r.pointee.submitted &+= UInt64(n)
            r.pointee.pending -= Int(n)
            r.pointee.batches &+= 1
        }
    }

    /// The poll hook: submit what is queued, reap completions, unpark their uthreads.
    /// `caller`: the completion of the uthread running the poll, which needs no unpark.
    static func poll(_ r: UnsafeMutablePointer<RingState>, caller: UnsafeMutablePointer<Completion>? = nil) -> Int {
        submit(r)
        let ready = cju_cq_ready(r.pointee.ring)
        if ready == 0 && !r.pointee.signalMayBeStale { return 0 }
        // Drain the doorbell before reaping: a completion posted after this read rings
        // it again, so none can be missed.
        var value: UInt64 = 0
        _ = read(r.pointee.eventFD, &value, 8)
        r.pointee.signalMayBeStale = false
        var reaped = 0
        var data: UInt64 = 0
        var result: Int32 = 0
        while cju_take_cqe(r.pointee.ring, &data, &result) == 1 {
            let c = UnsafeMutablePointer<Completion>(bitPattern: UInt(data))!
            let waiter = c.pointee.waiter
            c.pointee.result = result
            cj_store_release_u32(&c.pointee.done, 1)
            if c != caller { waiter.unpark() }
            reaped += 1
        }
        if reaped > 0 {
            r.pointee.completed &+= UInt64(reaped)
            r.pointee.signalMayBeStale = true
        }
        return reaped
    }
}

/// Why a ring could not be made.
struct HostIOSetupFailure: Error {
    let message: String
}

/// Carries a pointer owned by one kthread into its poll-hook closure.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
