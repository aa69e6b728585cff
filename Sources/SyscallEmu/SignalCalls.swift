// SignalCalls.swift: delivering a signal to an application handler at the return of a
// system call (kill, tkill, tgkill aimed at the instance itself), with Linux's
// rt_sigframe on the application stack, and rt_sigreturn restoring what it saved.
import CJunction

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Layout of the x86-64 rt_sigframe (arch/x86/include/asm/sigframe.h).
    static let ucontextOffset: UInt64 = 8        // after pretcode
    static let ucontextSize: UInt64 = 304        // flags, link, stack, sigcontext (256), sigmask
    static let mcontextOffset: UInt64 = 40       // within the ucontext
    static let siginfoSize: UInt64 = 128
    static let saSiginfo: UInt64 = 4, saResetHand: UInt64 = 0x8000_0000

    /// Order of the general registers in struct sigcontext (glibc's REG_* indices).
    static func gregs(_ f: UnsafeMutablePointer<cj_syscall_frame>) -> [UnsafeMutablePointer<UInt64>] {
        let base = UnsafeMutableRawPointer(f)
        func at(_ off: Int) -> UnsafeMutablePointer<UInt64> { (base + off).assumingMemoryBound(to: UInt64.self) }
        // r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, rflags
        return [at(64), at(72), at(80), at(88), at(96), at(104), at(112), at(120),
                at(40), at(32), at(48), at(8), at(24), at(0), at(16), at(56), at(128), at(136)]
    }

    /// Sets up `f` so that returning from the current call enters `action`'s handler for
    /// `sig`; the call's own result `result` is saved in the frame for rt_sigreturn.
    static func deliver(_ sig: Int32, code: Int32, action: (UInt64, UInt64, UInt64, UInt64), result: Int64,
                        frame f: SyscallFrame, process p: LinuxProcess) throws(LinuxError) -> Int64 {
        let raw = f.raw
        var sp = raw.pointee.rsp &- 128  // the red zone
        // Vector state, as the entry code saved it.
        let xsaveBytes = UInt64(CJ_XSAVE_AREA)
        sp = (sp &- xsaveBytes) & ~63
        let fpstate = sp
        try UserMemory.pointer(fpstate, Int(xsaveBytes)).copyMemory(from: UnsafeRawPointer(raw) + 192, byteCount: Int(xsaveBytes))
        // The frame itself: at handler entry rsp + 8 must be 16-byte aligned.
        sp = ((sp &- (8 + ucontextSize + siginfoSize)) & ~15) &- 8
        let frameBytes = Int(8 + ucontextSize + siginfoSize)
        let base = try UserMemory.pointer(sp, frameBytes)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: frameBytes)
        base.storeBytes(of: action.2, as: UInt64.self)  // pretcode: sa_restorer
        let uc = base + Int(ucontextOffset)
        uc.storeBytes(of: Int32(2), toByteOffset: 24, as: Int32.self)  // uc_stack.ss_flags = SS_DISABLE
        let mc = uc + Int(mcontextOffset)
        raw.pointee.rax = UInt64(bitPattern: result)
        for (i, reg) in gregs(raw).enumerated() { mc.storeBytes(of: reg.pointee, toByteOffset: i * 8, as: UInt64.self) }
        mc.storeBytes(of: UInt64(0x33), toByteOffset: 18 * 8, as: UInt64.self)  // cs
        mc.storeBytes(of: fpstate, toByteOffset: 23 * 8, as: UInt64.self)
        let info = base + Int(ucontextOffset + ucontextSize)
        info.storeBytes(of: sig, toByteOffset: 0, as: Int32.self)
        info.storeBytes(of: code, toByteOffset: 8, as: Int32.self)
        info.storeBytes(of: p.pid, toByteOffset: 16, as: Int32.self)
        info.storeBytes(of: UInt32(getuid()), toByteOffset: 20, as: UInt32.self)
        if action.1 & saResetHand != 0 { _ = p.exchangeAction(Int(sig), (0, 0, 0, 0)) }
        // Enter the handler: handler(sig, &info, &uc) with DF clear.
        raw.pointee.rip = action.0
        raw.pointee.rsp = sp
        raw.pointee.rdi = UInt64(sig)
        raw.pointee.rsi = UInt64(UInt(bitPattern: info))
        raw.pointee.rdx = UInt64(UInt(bitPattern: uc))
        raw.pointee.rflags &= ~UInt64(0x400)
        return 0  // rax at handler entry
    }

    static func registerSignals(_ d: Dispatcher) {
        d.register(15, "rt_sigreturn") { f, _ throws(LinuxError) in
            // The restorer's `syscall` runs with rsp at the ucontext.
            let raw = f.raw
            let uc = try UserMemory.pointer(raw.pointee.rsp, Int(ucontextSize))
            let mc = uc + Int(mcontextOffset)
            let saved = (0..<18).map { mc.load(fromByteOffset: $0 * 8, as: UInt64.self) }
            for (reg, value) in zip(gregs(raw), saved) { reg.pointee = value }
            let fpstate = mc.load(fromByteOffset: 23 * 8, as: UInt64.self)
            if fpstate != 0 {
                let src = try UserMemory.pointer(fpstate, Int(CJ_XSAVE_AREA))
                (UnsafeMutableRawPointer(raw) + 192).copyMemory(from: src, byteCount: Int(CJ_XSAVE_AREA))
            }
            return Int64(bitPattern: raw.pointee.rax)
        }
    }
}
