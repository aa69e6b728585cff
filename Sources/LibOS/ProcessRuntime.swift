// ProcessRuntime.swift: the parts of an instance a forked child builds again: the
// runtime whose kthreads intercept system calls, the kick that reaches them, and the
// signal thread that hands signals from the host to the process.
import CJunction
import FileSystem
import NUMA
import SyscallEmu
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

enum ProcessRuntime {
    /// Starts a runtime whose kthreads turn interception on as they start. Returns it,
    /// its kthreads' thread ids and areas (for the preemption watchdog), and the first
    /// error Syscall User Dispatch gave (0: none).
    static func start(kthreads: Int?, mode: InterceptionMode, numaNode: NUMANode? = nil) throws(InstanceError) -> (Runtime, [Int32], [UInt], Int32) {
        // The first SUD error (0: none), and the kthreads' thread ids and areas.
        let failures = Locked((sudError: Int32(0), tids: [Int32](), areas: [UInt]()))
        var rtConfig = RuntimeConfiguration(kthreads: kthreads)
        rtConfig.numaNode = numaNode
        rtConfig.onKThreadStart = { _ in
            let area = cj_area_or_null()!
            var rc: Int32 = 0
            if mode == .seccomp { cj_libos_area_init(area) } else { rc = cj_sud_enable(area) }
            failures.withLock {
                if rc != 0 { $0.sudError = -rc }
                $0.tids.append(area.pointee.tid)
                $0.areas.append(UInt(bitPattern: area))
            }
        }
        let runtime: Runtime
        do { runtime = try Runtime(rtConfig) } catch { throw .runtime(error.description) }
        return failures.withLock { (runtime, $0.tids, $0.areas, $0.sudError) }
    }

    /// The kick: the kick signal to every kthread of this process.
    static func kick(_ tids: [Int32]) -> @Sendable () -> Void {
        let pid = getpid()
        return { for tid in tids { _ = cj_host_syscall(Int64(SyscallNumber.tgkill.rawValue), UInt64(pid), UInt64(tid), UInt64(CJ_KICK_SIGNAL), 0, 0, 0) } }
    }

    /// The signals the signal thread takes from the host: all but those the kthreads
    /// handle themselves (SIGSYS, faults sent by the kernel, the kick) and glibc's own.
    static var forwarded: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in Int32(1)...64 where ![SIGKILL, SIGSTOP, SIGSYS, 32, 33, CJ_KICK_SIGNAL].contains(sig) {
            sigaddset(&set, sig)
        }
        return set
    }

    /// The signal thread: takes signals from the host and gives them to the process.
    static func signalLoop(_ process: LinuxProcess) -> Never {
        var set = forwarded
        pthread_sigmask(SIG_BLOCK, &set, nil)
        cj_set_signal_thread(cj_gettid())
        var info = siginfo_t()
        while true {
            let sig = sigwaitinfo(&set, &info)
            if sig <= 0 { continue }
            // A delivery takes locks a fork must not copy held (the signals' observers,
            // a timer's state): a fork waits for the delivery to end (ForkCalls).
            LinuxProcess.hostSignalGate.withLock {
                if sig == LinuxProcess.hostTimerSignal && info.si_code == -2 /* SI_TIMER */ {
                    process.hostTimerExpired(info._sifields._timer.si_sigval.sival_int, overrun: info._sifields._timer.si_overrun)
                    return
                }
                let status = sig == SIGCHLD ? info._sifields._sigchld.si_status : 0
                process.deliverFromHost(sig, pid: info._sifields._kill.si_pid, uid: info._sifields._kill.si_uid,
                                        code: info.si_code, status: status)
            }
        }
    }

    /// What a forked child needs from LibOS (SyscallEmu's ProcessHost).
    static func host(kthreads: Int?, mode: InterceptionMode, quantum: Duration?, numaNode: NUMANode? = nil) -> ProcessHost {
        ProcessHost(makeRuntime: {
            // (A Syscall User Dispatch error was seen by the parent too: it then runs on
            // the seccomp filter, which the child inherits.)
            guard let started = try? start(kthreads: kthreads, mode: mode, numaNode: numaNode) else { return nil }
            // The parent's watchdog thread does not exist in the child: its own starts.
            if let quantum { Preemption(areas: started.2, tids: started.1, slice: quantum).start() }
            return (started.0, kick(started.1))
        }, signalLoop: { signalLoop($0) })
    }
}
