// Runtime.swift: the public Runtime: configuration, starting and stopping kthreads,
// spawning uthreads from anywhere, poll-hook registration and statistics.
import CUThreads
import NUMA
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a uthread woken by another uthread runs next.
public enum WakePlacement: Sendable, Equatable {
    /// On the waker's kthread (Caladan's and Go's choice: the data it was woken for is
    /// hot in that core's cache).
    case waker
    /// On the kthread it last ran on, through that kthread's inbox.
    case home
}

/// How a runtime is built.
public struct RuntimeConfiguration: Sendable {
    /// Number of kernel threads. Default: the CPUs this process may run on.
    public var kthreads: Int
    /// Pin kthread i to the i-th allowed CPU.
    public var pinKThreads: Bool
    /// Usable bytes of each uthread stack (a guard page is added below it).
    public var stackSize: Int
    /// How long an idle kthread spins looking for work before it sleeps in the kernel.
    public var spinBeforeSleep: Duration
    /// Where woken uthreads run.
    public var wakePlacement: WakePlacement
    /// Called on each kthread, with its index, after its %gs area is installed and
    /// before it runs any uthread (e.g. to turn on system-call interception there).
    public var onKThreadStart: (@Sendable (Int) -> Void)?
    /// The NUMA node the kthreads run on and the uthread stacks live on (nil: anywhere).
    /// With ``pinKThreads``, kthread i is pinned to the node's i-th CPU.
    public var numaNode: NUMANode?

    public init(kthreads: Int? = nil, pinKThreads: Bool = false, stackSize: Int = 256 * 1024,
                spinBeforeSleep: Duration = .microseconds(50), wakePlacement: WakePlacement = .waker) {
        self.kthreads = kthreads ?? Int(cj_allowed_cpu_count())
        self.pinKThreads = pinKThreads
        self.stackSize = stackSize
        self.spinBeforeSleep = spinBeforeSleep
        self.wakePlacement = wakePlacement
        self.onKThreadStart = nil
        self.numaNode = nil
    }
}

/// Why a runtime could not start.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case host(HostCallError)

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): "invalid runtime configuration: \(why)"
        case .host(let e): "runtime start-up failed: \(e)"
        }
    }
}

/// State shared by the kthreads of one runtime; lives in raw memory so the scheduler
/// reaches it without reference counting.
@usableFromInline
struct RuntimeCore: ~Copyable {
    @usableFromInline var kthreads: KT
    @usableFromInline let count: Int
    let geometry: StackGeometry
    @usableFromInline let placement: WakePlacement
    let spinNanoseconds: Int64
    let onKThreadStart: (@Sendable (Int) -> Void)?

    let globalLock = SpinLock()
    var global = RunList()
    @usableFromInline let globalCount = Atomic<Int>(0)

    let poolLock = SpinLock()
    var pool: [UT] = []
    /// `pool.count`, stored under `poolLock`, read without it by an idle kthread.
    let poolSize = Atomic<Int>(0)
    /// Uthreads ended since the last return of memory (Scheduler.returnMemory).
    let endedSinceReturn = Atomic<Bool>(false)
    let terminated = Atomic<Bool>(false)

    @usableFromInline let live = Atomic<Int>(0)
    let nextID = Atomic<UInt64>(1)
    let stopping = Atomic<Bool>(false)
    @usableFromInline let spinning = Atomic<Int>(0)
    let sleepers = Atomic<Int>(0)
    /// Kthreads that finished start-up (a futex word).
    var started: UInt32 = 0
    let pin: Bool
    let nextHookID = Atomic<UInt64>(1)
    /// Stopping the world (Quiesce.swift): requested, how many kthreads wait at a safe
    /// point, and the futex word they wait on.
    @usableFromInline let quiesceRequested = Atomic<Bool>(false)
    let quiesced = Atomic<Int>(0)
    /// Kthreads asleep in the kernel in their idle loop: stopped as they are (they hold
    /// no lock, and one that wakes checks for a stopper before it does anything).
    let quiesceAsleep = Atomic<Int>(0)
    var quiesceWord: UInt32 = 0
    /// The Runtime object (unretained), for UThread.spawn.
    @usableFromInline var owner: UnsafeMutableRawPointer? = nil

    init(count: Int, geometry: StackGeometry, placement: WakePlacement, spinNanoseconds: Int64, pin: Bool,
         onKThreadStart: (@Sendable (Int) -> Void)?) {
        self.onKThreadStart = onKThreadStart
        self.count = count
        self.pin = pin
        self.geometry = geometry
        self.placement = placement
        self.spinNanoseconds = spinNanoseconds
        self.kthreads = .allocate(capacity: count)
    }
}

@usableFromInline typealias RT = UnsafeMutablePointer<RuntimeCore>

/// A poll hook: work the scheduler runs between uthreads on one kthread (draining a NIC
/// queue, reaping io_uring completions), and an fd that becomes readable when the hook
/// has work, which an idle kthread waits on instead of spinning.
public struct PollHook: Sendable {
    public var name: String
    public var fd: Int32?
    /// Does the work; returns how many items it handled (0 when idle).
    public var poll: @Sendable () -> Int

    public init(name: String, fd: Int32? = nil, poll: @escaping @Sendable () -> Int) {
        self.name = name
        self.fd = fd
        self.poll = poll
    }

    var id: UInt64 = 0
}

/// Identifies a registered poll hook.
public struct PollHookToken: Sendable, Hashable {
    public let kthread: Int
    let id: UInt64
}

/// A runtime of user-level threads over N kernel threads.
///
/// ```swift
/// let rt = try Runtime()
/// let h = rt.spawn { 6 * 7 }
/// print(h.join())   // 42
/// rt.shutdown()
/// ```
public final class Runtime: @unchecked Sendable {
    @usableFromInline let core: RT
    public let configuration: RuntimeConfiguration
    private var pthreads: [pthread_t] = []
    private let shutDown = Atomic<Bool>(false)

    /// Starts the kthreads.
    public init(_ configuration: RuntimeConfiguration = RuntimeConfiguration()) throws(RuntimeError) {
        guard configuration.kthreads >= 1, configuration.kthreads <= 1024 else {
            throw .invalidConfiguration("kthreads must be 1...1024, got \(configuration.kthreads)")
        }
        guard configuration.stackSize >= 16 * 1024, configuration.stackSize <= 1 << 30 else {
            throw .invalidConfiguration("stackSize must be 16 KiB...1 GiB, got \(configuration.stackSize)")
        }
        self.configuration = configuration
        cj_install_overflow_reporter()
        let n = configuration.kthreads
        core = .allocate(capacity: 1)
        core.initialize(to: RuntimeCore(count: n, geometry: StackGeometry(stackSize: configuration.stackSize, node: configuration.numaNode),
                                        placement: configuration.wakePlacement,
                                        spinNanoseconds: max(0, configuration.spinBeforeSleep.nanosecondsSaturated),
                                        pin: configuration.pinKThreads, onKThreadStart: configuration.onKThreadStart))
        core.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        var made = 0
        do {
            for i in 0..<n {
                let doorbell = try Host.makeEventFD().get()
                let epfd: Int32
                do { epfd = try Host.makeEpoll().get() } catch { Host.closeFD(doorbell); throw error }
                if case .failure(let e) = Host.epollAdd(epfd, fd: doorbell, token: 0) {
                    Host.closeFD(doorbell); Host.closeFD(epfd)
                    throw e
                }
                (core.pointee.kthreads + i).initialize(to: KThread(runtime: core, index: i, doorbell: doorbell, epfd: epfd))
                made += 1
            }
        } catch let e as HostCallError {
            for i in 0..<made { core.pointee.kthreads[i].releaseResources() }
            core.pointee.kthreads.deinitialize(count: made)
            core.pointee.kthreads.deallocate()
            core.deinitialize(count: 1)
            core.deallocate()
            throw .host(e)
        } catch { fatalError("unreachable") }

        for i in 0..<n {
            var tid = pthread_t()
            let k = core.pointee.kthreads + i
            let rc = pthread_create(&tid, nil, { arg in
                Scheduler.kthreadMain(arg!.assumingMemoryBound(to: KThread.self))
                return nil
            }, UnsafeMutableRawPointer(k))
            require(rc == 0, "UThreads: pthread_create failed (\(rc)) for kthread \(i)")
            pthreads.append(tid)
        }
        // Wait until every kthread installed its %gs area.
        while true {
            let s = cj_load_acquire_u32(&core.pointee.started)
            if s == UInt32(n) { break }
            _ = cj_futex_wait(&core.pointee.started, s, 1_000_000)
        }
        for i in 0..<n where core.pointee.kthreads[i].area.tid < 0 {
            let errno = -core.pointee.kthreads[i].area.tid
            shutdown()
            throw .host(HostCallError("kthread start (gs base / sigaltstack)", .init(rawValue: errno)))
        }
    }

    deinit {
        shutdown()
        core.deinitialize(count: 1)
        core.deallocate()
    }

    /// Runs `body` as the first uthread of a fresh runtime, waits for it, shuts the
    /// runtime down and returns the body's result.
    public static func run<T>(_ configuration: RuntimeConfiguration = RuntimeConfiguration(),
                              _ body: @escaping @Sendable () -> T) throws(RuntimeError) -> T {
        require(!UThread.isInUThread, "Runtime.run must be called from an OS thread, not from a uthread")
        let rt = try Runtime(configuration)
        let value = rt.spawn(body).join()
        rt.shutdown()
        return value
    }

    /// Number of kthreads.
    public var kthreadCount: Int { core.pointee.count }

    /// The runtime the caller runs on (a uthread's or a kthread's), if any.
    public static var current: Runtime? {
        guard let k = KT.current, let owner = k.pointee.runtime.pointee.owner else { return nil }
        return Unmanaged<Runtime>.fromOpaque(owner).takeUnretainedValue()
    }

    /// Starts a uthread running `body`. From a uthread of this runtime the new uthread is
    /// queued on the current kthread (idle kthreads steal it); from elsewhere it goes to
    /// the runtime's global queue, or to kthread `kthread` when given.
    @discardableResult @inlinable
    public func spawn<T>(on kthread: Int? = nil, _ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
        let handle = JoinHandle(body, runtime: self)
        handle.thread = Scheduler.spawn(core, box: Unmanaged.passRetained(handle as AnyEntryBox).toOpaque(), on: kthread)
        return handle
    }

    /// Waits for every uthread to finish, then stops the kthreads and releases their
    /// memory. Idempotent. A uthread still parked with nothing left that could wake it
    /// is a bug in the program and stops the process with a message.
    public func shutdown() {
        if shutDown.exchange(true, ordering: .acquiringAndReleasing) { return }
        if let k = KT.current, k.pointee.runtime == core {
            misuse("Runtime.shutdown() called from one of its own uthreads: it would wait for itself")
        }
        core.pointee.stopping.store(true, ordering: .sequentiallyConsistent)
        Scheduler.wakeAll(core)
        for t in pthreads { pthread_join(t, nil) }
        pthreads = []
        core.pointee.terminated.store(true, ordering: .sequentiallyConsistent)
        core.pointee.poolLock.lock()
        for t in core.pointee.pool { core.pointee.geometry.unmap(t) }
        core.pointee.pool = []
        core.pointee.poolSize.store(0, ordering: .relaxed)
        core.pointee.poolLock.unlock()
        for i in 0..<kthreadCount { core.pointee.kthreads[i].releaseResources() }
        core.pointee.kthreads.deinitialize(count: kthreadCount)
        core.pointee.kthreads.deallocate()
    }

    /// Registers a poll hook on kthread `kthread`. `wake`: ring the kthread's doorbell if
    /// it sleeps, so the hook runs at once. A hook whose fd is readable whenever it has
    /// work (an eventfd or epoll instance, not a queue that must be polled to arm its
    /// notification) may pass false: the kthread's epoll is level-triggered and wakes it
    /// when the fd is ready (at once if it is ready already), and a needless wake-up
    /// costs it a spin (a forked child adds several hooks to each new kthread).
    @discardableResult
    public func addPollHook(_ hook: PollHook, kthread: Int, wake: Bool = true) throws(HostCallError) -> PollHookToken {
        require(kthread >= 0 && kthread < kthreadCount, "addPollHook: no kthread \(kthread)")
        let k = core.pointee.kthreads + kthread
        var hook = hook
        hook.id = core.pointee.nextHookID.add(1, ordering: .relaxed).newValue
        if let fd = hook.fd {
            if case .failure(let e) = Host.epollAdd(k.pointee.epfd, fd: fd, token: hook.id) { throw e }
        }
        if hook.fd != nil { k.pointee.fdHooks.add(1, ordering: .relaxed) }
        k.pointee.hookLock.lock()
        k.pointee.hooks.append(hook)
        k.pointee.hookLock.unlock()
        k.pointee.hookVersion.add(1, ordering: .releasing)
        if wake || hook.fd == nil { k.wakeIfSleeping() }
        return PollHookToken(kthread: kthread, id: hook.id)
    }

    /// Removes a poll hook. Returns false if it was not registered.
    @discardableResult
    public func removePollHook(_ token: PollHookToken) -> Bool {
        let k = core.pointee.kthreads + token.kthread
        k.pointee.hookLock.lock()
        let i = k.pointee.hooks.firstIndex { $0.id == token.id }
        let removed = i.map { k.pointee.hooks.remove(at: $0) }
        k.pointee.hookLock.unlock()
        if let fd = removed?.fd {
            Host.epollRemove(k.pointee.epfd, fd: fd)
            k.pointee.fdHooks.subtract(1, ordering: .relaxed)
        }
        k.pointee.hookVersion.add(1, ordering: .releasing)
        return removed != nil
    }

    /// Per-kthread counters (read without stopping the kthreads).
    public func statistics() -> [KThreadStatistics] {
        (0..<kthreadCount).map { core.pointee.kthreads[$0].statistics }
    }

    /// Uthreads spawned and not yet finished.
    public var liveUThreads: Int { core.pointee.live.load(ordering: .relaxed) }

    /// Timers armed on kthread `i` (for tests of cancellation).
    public func armedTimers(kthread i: Int) -> Int { (core.pointee.kthreads + i).armedTimers }
}
