// SignalCalls.swift: delivering signals to application handlers and the signal system
// calls. A signal goes out when a call returns (or when a fault or the kick signal
// brings a thread running application code into the libOS): the handler is entered on
// Linux's rt_sigframe, on the alternate stack if asked, with the handler's mask; a
// blocking call it interrupted ends with EINTR or is restarted (SA_RESTART), and
// rt_sigreturn restores everything the frame saved.
import CJunction
import FileSystem
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Layout of the x86-64 rt_sigframe (arch/x86/include/asm/sigframe.h).
    static let ucontextOffset: UInt64 = 8        // after pretcode
    static let ucontextSize: UInt64 = 304        // flags, link, stack, sigcontext (256), sigmask
    static let mcontextOffset: UInt64 = 40       // within the ucontext
    static let sigmaskOffset = 296               // within the ucontext
    static let siginfoSize: UInt64 = 128

    /// The frame's general registers in struct sigcontext order (r8..r15, rdi, rsi, rbp,
    /// rbx, rdx, rax, rcx, rsp, rip, eflags) as byte offsets into cj_syscall_frame.
    static let sigcontextOrder = [64, 72, 80, 88, 96, 104, 112, 120, 40, 32, 48, 8, 24, 0, 16, 56, 128, 136]

    /// Sets up `f` so that returning from the current call enters `action`'s handler for
    /// `sig` on thread `t`; `result` (the call's own result) is saved in the frame for
    /// rt_sigreturn. Returns rax at handler entry.
    static func deliver(_ sig: Int32, _ si: SignalInfo, _ action: SignalAction, result: Int64,
                        frame f: SyscallFrame, process p: LinuxProcess, thread t: AppThread) throws(LinuxError) -> Int64 {
        let raw = f.raw
        cj_fixup_resume(raw)  // the site may have been rewritten since the call trapped
        let appSP = raw.pointee.rsp
        // The alternate stack, when the action asks for it and the thread is not on it.
        let stack = t.altStack
        var sp = appSP &- 128  // past the red zone
        if action.flags & SignalAction.onStack != 0, stack.enabled, !stack.contains(appSP) {
            sp = stack.base &+ stack.size
            if stack.flags & AltStack.autoDisarm != 0 { t.altStack = AltStack() }
        }
        // Vector state, as the entry code saved it (as an XSAVE image).
        cj_materialize_vector_state(raw)
        let xsaveBytes = UInt64(cj_xsave_size())
        sp = (sp &- xsaveBytes) & ~63
        let fpstate = sp
        try UserMemory.pointer(fpstate, Int(xsaveBytes), for: .write).copyMemory(from: UnsafeRawPointer(raw) + 192, byteCount: Int(xsaveBytes))
        // The frame itself: at handler entry rsp + 8 must be 16-byte aligned.
        sp = ((sp &- (8 + ucontextSize + siginfoSize)) & ~15) &- 8
        let frameBytes = Int(8 + ucontextSize + siginfoSize)
        let base = try UserMemory.pointer(sp, frameBytes, for: .write)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: frameBytes)
        base.storeBytes(of: action.restorer, as: UInt64.self)  // pretcode: sa_restorer
        let uc = base + Int(ucontextOffset)
        uc.storeBytes(of: UInt64(0x6), toByteOffset: 0, as: UInt64.self)  // UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
        // uc_stack: the alternate stack as it was, SS_ONSTACK if the thread was on it.
        uc.storeBytes(of: stack.base, toByteOffset: 16, as: UInt64.self)
        uc.storeBytes(of: stack.enabled ? (stack.contains(appSP) ? AltStack.onStack : 0) | (stack.flags & AltStack.autoDisarm)
                                        : AltStack.disable, toByteOffset: 24, as: Int32.self)
        uc.storeBytes(of: stack.size, toByteOffset: 32, as: UInt64.self)
        let mc = uc + Int(mcontextOffset)
        raw.pointee.rax = UInt64(bitPattern: result)
        let frameBase = UnsafeRawPointer(raw)
        for (i, off) in sigcontextOrder.enumerated() {
            mc.storeBytes(of: frameBase.load(fromByteOffset: off, as: UInt64.self), toByteOffset: i * 8, as: UInt64.self)
        }
        mc.storeBytes(of: UInt16(0x33), toByteOffset: 144, as: UInt16.self)  // cs
        mc.storeBytes(of: UInt16(0x2b), toByteOffset: 150, as: UInt16.self)  // ss
        mc.storeBytes(of: si.error, toByteOffset: 152, as: UInt64.self)
        mc.storeBytes(of: si.trapNumber, toByteOffset: 160, as: UInt64.self)
        mc.storeBytes(of: si.address, toByteOffset: 176, as: UInt64.self)  // cr2
        mc.storeBytes(of: fpstate, toByteOffset: 184, as: UInt64.self)
        let oldMask = p.signals.beginHandler(on: t, sig, action)
        mc.storeBytes(of: oldMask, toByteOffset: 168, as: UInt64.self)  // oldmask
        uc.storeBytes(of: oldMask, toByteOffset: sigmaskOffset, as: UInt64.self)
        let info = base + Int(ucontextOffset + ucontextSize)
        info.storeBytes(of: sig, toByteOffset: 0, as: Int32.self)
        info.storeBytes(of: si.code, toByteOffset: 8, as: Int32.self)
        if [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP].contains(sig) && si.code > 0 {
            info.storeBytes(of: si.address, toByteOffset: 16, as: UInt64.self)
        } else {
            info.storeBytes(of: si.pid, toByteOffset: 16, as: Int32.self)
            info.storeBytes(of: si.uid, toByteOffset: 20, as: UInt32.self)
            if sig == SIGCHLD {
                info.storeBytes(of: si.status, toByteOffset: 24, as: Int32.self)
            } else {
                info.storeBytes(of: si.value, toByteOffset: 24, as: UInt64.self)  // si_value (timers)
            }
        }
        // Enter the handler: handler(sig, &info, &uc) with DF clear.
        raw.pointee.rip = action.handler
        raw.pointee.rsp = sp
        raw.pointee.rdi = UInt64(sig)
        raw.pointee.rsi = UInt64(UInt(bitPattern: info))
        raw.pointee.rdx = UInt64(UInt(bitPattern: uc))
        raw.pointee.rflags &= ~UInt64(0x400)
        if Dispatcher.active?.trace == true { Dispatcher.log(level: .info, "--- \(signalName(sig)) {si_signo=\(signalName(sig)), si_code=\(si.code)} ---") }
        return 0
    }

    /// As a call returns `result`: delivers a pending signal the thread does not block,
    /// and settles ERESTARTSYS/ERESTARTNOHAND (EINTR after a handler without
    /// SA_RESTART, otherwise a restart of the call).
    static func afterCall(_ f: SyscallFrame, _ p: LinuxProcess, result: Int64) -> Int64 {
        var result = result
        let fromCall = f.raw.pointee.pad.0 <= UInt64(CJ_ENTRY_TRAP) && f.number != 15
        // A kick that interrupted application code: the preemption watchdog's (or a signal's).
        // Let the other runnable uthreads have the kthread before going back.
        if f.raw.pointee.pad.0 == UInt64(CJ_ENTRY_SIGNAL) { UThread.yield() }
        if let t = AppThread.current {
            if p.signals.takeExitRequest(t) { exitThread(t, p) }  // another thread's execve
            while let (sig, si, action) = p.signals.take(for: t) {
                if action.handler == 1 { continue }
                if action.handler == 0 {
                    switch DefaultAction(sig) {
                    case .ignore, .resume: continue
                    case .stop: kill(getpid(), SIGSTOP); continue
                    case .terminate, .core: p.signals.terminate(by: sig)
                    }
                }
                if fromCall && LinuxError.isRestart(result) {
                    result = result == -512 && action.flags & SignalAction.restart != 0 ? restart(f) : -Int64(LinuxError.Code.EINTR.rawValue)
                }
                do {
                    return try deliver(sig, si, action, result: result, frame: f, process: p, thread: t)
                } catch {
                    // No room for the frame: Linux kills the thread group with SIGSEGV.
                    p.signals.terminate(by: SIGSEGV)
                }
            }
        }
        // No handler ran: a temporary mask (ppoll, epoll_pwait, sigsuspend) ends here.
        if let t = AppThread.current { p.signals.endTemporaryMask(of: t) }
        if fromCall && LinuxError.isRestart(result) { result = restart(f) }
        return result
    }

    /// Makes the application execute its `syscall` instruction again, with its number.
    static func restart(_ f: SyscallFrame) -> Int64 {
        f.raw.pointee.rip &-= 2
        return Int64(f.raw.pointee.nr)
    }

    /// A fault in application code, or the kick: the frame holds the interrupted
    /// registers; returns their rax unchanged unless a handler is entered.
    static func arrival(_ f: SyscallFrame, _ p: LinuxProcess) -> Int64 {
        let raw = f.raw
        let rax = Int64(bitPattern: raw.pointee.rax)
        guard raw.pointee.pad.0 == UInt64(CJ_ENTRY_FAULT) else { return afterCall(f, p, result: rax) }
        let sig = Int32(raw.pointee.nr)
        let si = SignalInfo(code: Int32(truncatingIfNeeded: raw.pointee.pad.2), address: raw.pointee.pad.1,
                            error: raw.pointee.pad.3 & 0xFFFF_FFFF, trapNumber: raw.pointee.pad.3 >> 32)
        // A fault the thread blocks or does not handle ends the process (force_sig_fault).
        let action = p.signals.action(sig)
        guard let t = AppThread.current, action.handler > 1,
              p.signals.lock.withLock({ t.blocked & SignalSet.bit(sig) == 0 }) else {
            p.signals.terminate(by: sig)
        }
        do {
            return try deliver(sig, si, action, result: rax, frame: f, process: p, thread: t)
        } catch {
            p.signals.terminate(by: SIGSEGV)
        }
    }

    /// The checks XRSTOR makes on an XSAVE image's header and MXCSR.
    static func validXSaveImage(_ image: UnsafeRawPointer) -> Bool {
        let xcr0 = cj_xcr0()
        let mxcsr = image.load(fromByteOffset: 24, as: UInt32.self)
        let stateBV = image.load(fromByteOffset: 512, as: UInt64.self)
        let compBV = image.load(fromByteOffset: 520, as: UInt64.self)
        guard mxcsr & 0xFFFF_0000 == 0, stateBV & ~xcr0 == 0 else { return false }
        for off in stride(from: 528, to: 576, by: 8) where image.load(fromByteOffset: off, as: UInt64.self) != 0 { return false }
        if compBV != 0 {  // compacted form
            let components = compBV & ~(UInt64(1) << 63)
            guard compBV >> 63 == 1, components & ~xcr0 == 0, stateBV & ~components == 0 else { return false }
        }
        return true
    }

    static func signalName(_ sig: Int32) -> String {
        let names = ["HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
                     "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
                     "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"]
        return sig >= 1 && Int(sig) <= names.count ? "SIG" + names[Int(sig) - 1] : "SIGRT_\(sig - 32)"
    }

    static func loadMask(_ address: UInt64, size: UInt64) throws(LinuxError) -> UInt64 {
        guard size == 8 else { throw LinuxError(.EINVAL) }
        return try UserMemory.load(UInt64.self, at: address)
    }

    static func registerSignals(_ d: Dispatcher) {
        d.register(.rt_sigaction) { f, p throws(LinuxError) in
            let sig = Int32(truncatingIfNeeded: f.a0)
            guard f.a3 == 8, sig >= 1, sig <= 64 else { throw LinuxError(.EINVAL) }
            var new: SignalAction?
            if f.a1 != 0 {
                guard sig != SIGKILL, sig != SIGSTOP else { throw LinuxError(.EINVAL) }
                new = SignalAction(handler: try UserMemory.load(UInt64.self, at: f.a1),
                                   flags: try UserMemory.load(UInt64.self, at: f.a1 + 8),
                                   restorer: try UserMemory.load(UInt64.self, at: f.a1 + 16),
                                   mask: try UserMemory.load(UInt64.self, at: f.a1 + 24) & ~SignalSet.unblockable)
            }
            if f.a2 != 0 { _ = try UserMemory.pointer(f.a2, 32, for: .write) }
            let old = p.signals.exchangeAction(sig, new)
            if f.a2 != 0 {
                try UserMemory.store(old.handler, at: f.a2); try UserMemory.store(old.flags, at: f.a2 + 8)
                try UserMemory.store(old.restorer, at: f.a2 + 16); try UserMemory.store(old.mask, at: f.a2 + 24)
            }
            return 0
        }
        d.register(.rt_sigprocmask) { f, p throws(LinuxError) in
            guard f.a3 == 8 else { throw LinuxError(.EINVAL) }
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            let set: UInt64? = f.a1 == 0 ? nil : try UserMemory.load(UInt64.self, at: f.a1)
            if f.a2 != 0 { _ = try UserMemory.pointer(f.a2, 8, for: .write) }
            let old = try p.signals.changeMask(of: t, how: f.a0, set: set)
            if f.a2 != 0 { try UserMemory.store(old, at: f.a2) }
            return 0  // what became unblocked goes out as this call returns
        }
        let kill: SyscallHandler = { f, p throws(LinuxError) in
            // kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig): within this instance.
            let sig = Int32(truncatingIfNeeded: f.number == 234 ? f.a2 : f.a1)
            guard sig >= 0, sig <= 64 else { throw LinuxError(.EINVAL) }
            var target: AppThread?
            switch f.number {
            case 62:
                let pid = Int32(truncatingIfNeeded: f.a0)
                // Other processes (the instance's are host processes) through the host;
                // a group that includes this process gets it here at once as well (the
                // host's copy is dropped as it arrives: Signals.deliverFromHost).
                if pid != p.pid {
                    if pid == Int32.min { throw LinuxError(.ESRCH) }
                    _ = try hostCall(62, f.a0, f.a1)
                    guard pid == 0 || pid == -getpgrp() else { return 0 }
                }
            case 200:
                let tid = Int32(truncatingIfNeeded: f.a0)
                guard tid > 0 else { throw LinuxError(.EINVAL) }
                guard let t = p.signals.thread(tid: tid) else { return try hostCall(200, f.a0, f.a1) }
                target = t
            default:
                let tgid = Int32(truncatingIfNeeded: f.a0), tid = Int32(truncatingIfNeeded: f.a1)
                guard tgid > 0, tid > 0 else { throw LinuxError(.EINVAL) }
                if tgid != p.pid { return try hostCall(234, f.a0, f.a1, f.a2) }
                guard let t = p.signals.thread(tid: tid) else { throw LinuxError(.ESRCH) }
                target = t
            }
            if sig == 0 { return 0 }
            let si = SignalInfo(code: f.number == 62 ? SignalInfo.user : SignalInfo.tkill, pid: p.pid, uid: getuid())
            p.signals.send(sig, si, to: target)
            return 0
        }
        d.register(.kill, kill)
        d.register(.tkill, kill)
        d.register(.tgkill, kill)
        d.register(.sigaltstack) { f, p throws(LinuxError) in
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            let onIt = t.altStack.contains(f.raw.pointee.rsp)
            var new: AltStack?
            if f.a0 != 0 {
                let base = try UserMemory.load(UInt64.self, at: f.a0)
                let flags = try UserMemory.load(Int32.self, at: f.a0 + 8)
                let size = try UserMemory.load(UInt64.self, at: f.a0 + 16)
                if onIt { throw LinuxError(.EPERM) }
                let mode = flags & ~AltStack.autoDisarm
                guard mode == 0 || mode == AltStack.onStack || mode == AltStack.disable else { throw LinuxError(.EINVAL) }
                if mode == AltStack.disable {
                    new = AltStack()
                } else {
                    guard size >= 2048 else { throw LinuxError(.ENOMEM) }  // MINSIGSTKSZ
                    new = AltStack(base: base, size: size, flags: flags & AltStack.autoDisarm)
                }
            }
            if f.a1 != 0 {
                let s = t.altStack
                try UserMemory.store(s.base, at: f.a1)
                try UserMemory.store(s.enabled ? (onIt ? AltStack.onStack : 0) | (s.flags & AltStack.autoDisarm) : AltStack.disable,
                                     at: f.a1 + 8)
                try UserMemory.store(UInt32(0), at: f.a1 + 12)
                try UserMemory.store(s.size, at: f.a1 + 16)
            }
            if let new { t.altStack = new }
            return 0
        }
        d.register(.rt_sigreturn) { f, p throws(LinuxError) in
            // The restorer's `syscall` runs with rsp at the ucontext.
            let raw = f.raw
            let uc = try UserMemory.pointer(raw.pointee.rsp, Int(ucontextSize), for: .read)
            let mc = uc + Int(mcontextOffset)
            let frameBase = UnsafeMutableRawPointer(raw)
            for (i, off) in sigcontextOrder.enumerated() {
                frameBase.storeBytes(of: mc.load(fromByteOffset: i * 8, as: UInt64.self), toByteOffset: off, as: UInt64.self)
            }
            // The trap flag would fire inside the exit path (libOS code) after popfq, not
            // on the application's next instruction as Linux arranges: it is dropped.
            raw.pointee.rflags &= ~UInt64(0x100)
            let fpstate = mc.load(fromByteOffset: 184, as: UInt64.self)
            if fpstate != 0 {
                let src = try UserMemory.pointer(fpstate, cj_xsave_size(), for: .read)
                // An image XRSTOR would refuse (#GP in the libOS) is a bad frame: Linux
                // kills the process with SIGSEGV for it.
                guard validXSaveImage(UnsafeRawPointer(src)) else { p.signals.terminate(by: SIGSEGV) }
                (frameBase + 192).copyMemory(from: src, byteCount: cj_xsave_size())
                cj_clear_manual_vector_state(raw)
            }
            if let t = AppThread.current {
                p.signals.restoreMask(of: t, uc.load(fromByteOffset: sigmaskOffset, as: UInt64.self))
                // The alternate stack as the frame saved it (restore_altstack).
                let flags = uc.load(fromByteOffset: 24, as: Int32.self)
                if !t.altStack.contains(raw.pointee.rsp) {
                    t.altStack = flags & AltStack.disable != 0 ? AltStack()
                        : AltStack(base: uc.load(fromByteOffset: 16, as: UInt64.self), size: uc.load(fromByteOffset: 32, as: UInt64.self),
                                   flags: flags & AltStack.autoDisarm)
                }
            }
            return Int64(bitPattern: raw.pointee.rax)
        }
        d.register(.rt_sigpending) { f, p throws(LinuxError) in
            guard f.a1 <= 8 else { throw LinuxError(.EINVAL) }
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            let set = p.signals.pendingSet(for: t) & p.signals.lock.withLock { t.blocked }
            let bytes = withUnsafeBytes(of: set) { Array($0.prefix(Int(f.a1))) }
            let dst = try UserMemory.buffer(f.a0, bytes.count, for: .write)
            bytes.withUnsafeBytes { dst.copyMemory(from: $0) }
            return 0
        }
        d.register(.rt_sigsuspend) { f, p throws(LinuxError) in
            let mask = try loadMask(f.a0, size: f.a1)
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            p.signals.beginTemporaryMask(of: t, mask)
            // Waits until a signal is delivered; the handler's frame restores the old mask.
            try waitForSignal(p, t)
        }
        d.register(.pause) { _, p throws(LinuxError) in
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            try waitForSignal(p, t)
        }
        d.register(.rt_sigtimedwait) { f, p throws(LinuxError) in
            let set = try loadMask(f.a0, size: f.a3) & ~SignalSet.unblockable
            guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
            var deadline: MonotonicInstant?
            if f.a2 != 0 {
                deadline = try UserTimespec.loadValid(at: f.a2).deadlineFromNow
            }
            if f.a1 != 0 { _ = try UserMemory.pointer(f.a1, 128, for: .write) }
            // While waiting, the awaited signals count as unblocked (so they pick this
            // thread), as Linux's real_blocked does.
            let old = p.signals.lock.withLock { t.blocked }
            p.signals.beginTemporaryMask(of: t, old & ~set)
            p.signals.lock.withLock { t.awaited = set }
            defer {
                p.signals.lock.withLock { t.awaited = 0 }
                p.signals.endTemporaryMask(of: t)
            }
            while true {
                if let (sig, si) = p.signals.take(in: set, for: t) {
                    if f.a1 != 0 {
                        let info = try UserMemory.pointer(f.a1, 128, for: .write)
                        info.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
                        info.storeBytes(of: sig, toByteOffset: 0, as: Int32.self)
                        info.storeBytes(of: si.code, toByteOffset: 8, as: Int32.self)
                        info.storeBytes(of: si.pid, toByteOffset: 16, as: Int32.self)
                        info.storeBytes(of: si.uid, toByteOffset: 20, as: UInt32.self)
                        info.storeBytes(of: si.value, toByteOffset: 24, as: UInt64.self)
                    }
                    return Int64(sig)
                }
                if p.signals.hasDeliverable(for: t) { throw LinuxError(.EINTR) }
                if let deadline {
                    if MonotonicInstant.now >= deadline { throw LinuxError(.EAGAIN) }
                    UThread.park(until: deadline)
                } else {
                    UThread.park()
                }
                _ = UThread.takeInterrupt()
            }
        }
    }

    /// Parks until a signal is there for `t`; the call then ends with EINTR (ERESTARTNOHAND
    /// settled by `afterCall`).
    static func waitForSignal(_ p: LinuxProcess, _ t: AppThread) throws(LinuxError) -> Never {
        while !p.signals.hasDeliverable(for: t) {
            UThread.park()
            _ = UThread.takeInterrupt()
        }
        throw LinuxError.restartNoHandler
    }
}
