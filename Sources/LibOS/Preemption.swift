// Preemption.swift: a uthread running application code for longer than a time slice is
// preempted, so other threads run, signals arrive and exit_group ends the process on
// any number of kthreads. A watchdog OS thread (not a kthread: its calls go straight to
// the host) looks at each kthread's area every slice; a kthread found in application
// code with the same uthread at two looks in a row is kicked, and the kick's way into
// the libOS yields (Handlers.afterCall). It costs one signal per busy slice and nothing
// while the instance is idle beyond a look every few slices.
import CJunction
import Synchronization
import UThreads

#if canImport(Glibc)
import Glibc
#endif

final class Preemption: @unchecked Sendable {
    // Tunables: how long the watchdog sleeps when no kthread is in application code, in slices.
    static let idleSlices: Int64 = 5

    private let areas: [UInt]
    private let tids: [Int32]
    private let slice: Duration
    private let stopping = Atomic<Bool>(false)
    private var thread = pthread_t()

    /// `areas`: the kthreads' cj_kthread_area addresses; `slice`: the time slice.
    init(areas: [UInt], tids: [Int32], slice: Duration) {
        self.areas = areas
        self.tids = tids
        self.slice = slice
    }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let me = Unmanaged<Preemption>.fromOpaque(arg!).takeRetainedValue()
            me.watch()
            return nil
        }, box)
        if rc != 0 { Unmanaged<Preemption>.fromOpaque(box).release() }
    }

    private func watch() {
        var blocked = sigset_t()
        sigfillset(&blocked)
        pthread_sigmask(SIG_BLOCK, &blocked, nil)  // the program's signals are the kthreads'
        var seen = [UInt](repeating: 0, count: areas.count)
        let pid = getpid()
        let sliceNs = slice.nanosecondsSaturated
        while !stopping.load(ordering: .relaxed) {
            var busy = false
            for i in areas.indices {
                let current = cj_area_running_application(UnsafeMutableRawPointer(bitPattern: areas[i]))
                if current == 0 {
                    seen[i] = 0
                    continue
                }
                busy = true
                if seen[i] == current {
                    _ = cj_host_syscall(234, UInt64(pid), UInt64(tids[i]), UInt64(CJ_KICK_SIGNAL), 0, 0, 0)  // tgkill
                    seen[i] = 0
                } else {
                    seen[i] = current
                }
            }
            var ts = timespec()
            let ns = busy ? sliceNs : sliceNs * Self.idleSlices
            ts.tv_sec = Int(ns / 1_000_000_000)
            ts.tv_nsec = Int(ns % 1_000_000_000)
            nanosleep(&ts, nil)
        }
    }
}
