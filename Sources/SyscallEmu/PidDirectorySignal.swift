// PidDirectorySignal.swift: pidfd_send_signal on a descriptor of /proc/PID, which Linux
// accepts as a pidfd; for this process's own directory (the libOS's) the signal is sent
// through the libOS's signal machinery, as kill(getpid(), sig) or with the caller's siginfo.
import FileSystem
import Glibc

extension Handlers {
    /// The signal when `file` is this process's /proc/PID directory; nil for any other file.
    static func signalThroughPidDirectory(_ f: SyscallFrame, _ p: LinuxProcess, _ file: OpenFile) throws(LinuxError) -> Int64? {
        guard let dir = file.location.node as? ProcDirectory, dir.inode == 3, dir.fs.process === p else { return nil }
        // PIDFD_SIGNAL_THREAD (the thread whose tid is the pid), _THREAD_GROUP (the
        // default for /proc/PID), _PROCESS_GROUP; at most one.
        guard f.a3 & ~UInt64(7) == 0, f.a3.nonzeroBitCount <= 1 else { throw LinuxError(.EINVAL) }
        let sig = Int32(truncatingIfNeeded: f.a1)
        guard sig >= 0, sig <= 64 else { throw LinuxError(.EINVAL) }
        var si = SignalInfo(code: SignalInfo.user, pid: p.pid, uid: getuid())
        if f.a2 != 0 {
            // The caller's siginfo: si_signo must be the signal; its own process may
            // give any si_code (kernel: copy_siginfo_from_user_any, then the checks).
            let signo = try UserMemory.load(Int32.self, at: f.a2)
            guard signo == sig else { throw LinuxError(.EINVAL) }
            si.code = try UserMemory.load(Int32.self, at: f.a2 + 8)
            si.pid = try UserMemory.load(Int32.self, at: f.a2 + 16)
            si.uid = try UserMemory.load(UInt32.self, at: f.a2 + 20)
            si.value = try UserMemory.load(UInt64.self, at: f.a2 + 24)
        }
        if f.a3 == 4 {  // the process group through the host, this process here (as kill(-pgrp))
            _ = try hostCall(62, UInt64(bitPattern: Int64(-getpgrp())), f.a1)
        }
        if sig == 0 { return 0 }
        var target: AppThread?
        if f.a3 == 1 {
            guard let t = p.signals.thread(tid: p.pid) else { throw LinuxError(.ESRCH) }
            target = t
        }
        p.signals.send(sig, si, to: target)
        return 0
    }
}
