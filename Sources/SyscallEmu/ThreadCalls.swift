// ThreadCalls.swift: application threads as uthreads: clone/clone3 with the thread flags
// (a new uthread resumes after the call with rax = 0, its own stack and TLS), gettid,
// set_tid_address, and thread exit with CLONE_CHILD_CLEARTID's futex wake.
import CJunction
import FileSystem
import Synchronization
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Per-application-thread state, reached from the uthread's control block.
public final class AppThread: @unchecked Sendable {
    /// The thread id (an execve from another thread makes it the process id).
    @exclusivity(unchecked) public internal(set) var tid: Int32
    /// Set by an execve in another thread: this thread ends at its next way out of the
    /// libOS (guarded by the signals lock).
    @exclusivity(unchecked) var exitRequested = false
    /// CLONE_CHILD_CLEARTID / set_tid_address: cleared and woken at exit.
    @exclusivity(unchecked) public var clearChildTID: UInt64 = 0
    /// The uthread running this thread, for interrupting its waits.
    @exclusivity(unchecked) var uthread: UThreadRef?
    /// Its index in the process's thread slots (ProcessSignals; -1: not there), guarded
    /// by the signals lock.
    @exclusivity(unchecked) var signalSlot = -1

    // Signal state, guarded by the process's ProcessSignals lock.
    @exclusivity(unchecked) var blocked: UInt64 = 0
    @exclusivity(unchecked) var pending: UInt64 = 0
    @exclusivity(unchecked) var pendingInfo: [Int32: SignalInfo] = [:]
    /// The mask to restore after rt_sigsuspend or ppoll's temporary one.
    @exclusivity(unchecked) var savedMask: UInt64?
    /// The signals rt_sigtimedwait waits for (Linux's real_blocked): one of them sent to
    /// this thread is taken by the wait, never fatal by default.
    @exclusivity(unchecked) var awaited: UInt64 = 0
    /// Only this thread touches its alternate stack.
    @exclusivity(unchecked) var altStack = AltStack()

    init(tid: Int32) { self.tid = tid }

    static let nextTID = Atomic<Int32>(0)

    /// The calling uthread's application thread (nil outside application threads).
    static var current: AppThread? {
        guard let a = cj_area_or_null(), let t = a.pointee.current, let p = t.pointee.app_thread else { return nil }
        return Unmanaged<AppThread>.fromOpaque(p).takeUnretainedValue()
    }

    /// Attaches `thread` to the calling uthread (retained until the thread exits).
    static func attach(_ thread: AppThread) {
        guard let a = cj_area_or_null(), let t = a.pointee.current else { return }
        t.pointee.app_thread = Unmanaged.passRetained(thread).toOpaque()
    }
}

extension Handlers {
    // Linux clone flags.
    static let cloneVM: UInt64 = 0x100, cloneFS: UInt64 = 0x200, cloneFiles: UInt64 = 0x400
    static let cloneSighand: UInt64 = 0x800, cloneThread: UInt64 = 0x10000, cloneSysvsem: UInt64 = 0x40000
    static let cloneSettls: UInt64 = 0x80000, cloneParentSettid: UInt64 = 0x100000
    static let cloneChildCleartid: UInt64 = 0x200000, cloneChildSettid: UInt64 = 0x1000000

    static func registerThreads(_ d: Dispatcher) {
        d.register(.clone) { f, p throws(LinuxError) in
            try clone(f, p, flags: f.a0, stack: f.a1, parentTID: f.a2, childTID: f.a3, tls: f.a4)
        }
        d.register(.clone3) { f, p throws(LinuxError) in
            // struct clone_args: 64 bytes (VER0) to 88 (VER2); up to a page, the bytes we do
            // not know must be zero (copy_struct_from_user: E2BIG otherwise).
            guard f.a1 >= 64 else { throw LinuxError(.EINVAL) }
            guard f.a1 <= 4096 else { throw LinuxError(.E2BIG) }
            let a = f.a0
            if f.a1 > 88 {
                let tail = try UserMemory.buffer(a + 88, Int(f.a1) - 88, for: .read)
                guard tail.allSatisfy({ $0 == 0 }) else { throw LinuxError(.E2BIG) }
            }
            let flags = try UserMemory.load(UInt64.self, at: a)
            let childTID = try UserMemory.load(UInt64.self, at: a + 16)
            let parentTID = try UserMemory.load(UInt64.self, at: a + 24)
            let stack = try UserMemory.load(UInt64.self, at: a + 40)
            let size = try UserMemory.load(UInt64.self, at: a + 48)
            let tls = try UserMemory.load(UInt64.self, at: a + 56)
            // clone3_stack_valid: both or neither, and the range inside the user half.
            guard (stack == 0) == (size == 0) else { throw LinuxError(.EINVAL) }
            let (top, overflow) = stack.addingReportingOverflow(size)
            guard !overflow, top <= 0x7fff_ffff_f000 else { throw LinuxError(.EINVAL) }
            return try clone(f, p, flags: flags, stack: top,
                             parentTID: parentTID, childTID: childTID, tls: tls)
        }
        d.register(.gettid) { _, p throws(LinuxError) in Int64(AppThread.current?.tid ?? p.pid) }
        d.register(.set_tid_address) { f, p throws(LinuxError) in
            let t = AppThread.current
            t?.clearChildTID = f.a0
            return Int64(t?.tid ?? p.pid)
        }
        d.register(.exit) { f, p throws(LinuxError) in
            guard let t = AppThread.current, t.tid != p.pid else {
                // The main thread leaving alone: treat as the process exiting.
                p.exitGroup(Int32(truncatingIfNeeded: f.a0))
            }
            exitThread(t, p)
        }
    }

    /// Ends the calling application thread: CLONE_CHILD_CLEARTID's store and futex wake,
    /// then the uthread.
    static func exitThread(_ t: AppThread, _ p: LinuxProcess) -> Never {
        if t.clearChildTID != 0, UserMemory.isPlausible(t.clearChildTID, 4) {
            try? UserMemory.store(UInt32(0), at: t.clearChildTID)
            futexTable.wake(UnsafeRawPointer(bitPattern: UInt(t.clearChildTID))!, count: 1)
        }
        p.signals.unregister(t)
        if let a = cj_area_or_null(), let u = a.pointee.current, let ptr = u.pointee.app_thread {
            u.pointee.app_thread = nil
            Unmanaged<AppThread>.fromOpaque(ptr).release()
        }
        UThread.exitCurrent()
    }

    static func clone(_ f: SyscallFrame, _ p: LinuxProcess, flags: UInt64, stack: UInt64, parentTID: UInt64,
                      childTID: UInt64, tls: UInt64) throws(LinuxError) -> Int64 {
        let threadFlags = cloneVM | cloneFS | cloneFiles | cloneSighand | cloneThread
        // Without CLONE_THREAD: a new process (ForkCalls.swift).
        if flags & cloneThread == 0 {
            return try fork(f, p, flags: flags, stack: stack, parentTID: parentTID, childTID: childTID, tls: tls)
        }
        guard flags & threadFlags == threadFlags else { throw LinuxError(.EINVAL) }
        guard stack != 0 else { throw LinuxError(.EINVAL) }
        guard let parent = AppThread.current else { throw LinuxError(.EINVAL) }
        let tid = p.pid &+ AppThread.nextTID.add(1, ordering: .relaxed).newValue
        let child = AppThread(tid: tid)
        // The child inherits the mask, not the alternate stack or pending signals.
        child.blocked = p.signals.lock.withLock { parent.blocked }
        if flags & cloneChildCleartid != 0 { child.clearChildTID = childTID }
        if flags & cloneParentSettid != 0 { try UserMemory.store(tid, at: parentTID) }
        if flags & cloneChildSettid != 0 { try UserMemory.store(tid, at: childTID) }

        // The child's frame: the parent's registers and vector state, rax = 0, its stack
        // and (CLONE_SETTLS) its TLS.
        cj_fixup_resume(f.raw)
        let size = MemoryLayout<cj_syscall_frame>.size + Int(CJ_XSAVE_AREA)
        guard let block = malloc(size) else { throw LinuxError(.ENOMEM) }
        block.copyMemory(from: UnsafeRawPointer(f.raw), byteCount: size)
        let frame = block.assumingMemoryBound(to: cj_syscall_frame.self)
        frame.pointee.rax = 0
        frame.pointee.rsp = stack
        if flags & cloneSettls != 0 { frame.pointee.fs_base = tls }
        let start = UnsafeSendableBlock(block)
        guard let runtime = Runtime.current else { free(block); throw LinuxError(.EAGAIN) }
        p.signals.register(child)
        let _: JoinHandle<Void> = runtime.spawn {
            AppThread.attach(child)
            // Under the signals lock: senders read it there (and unregister clears it).
            p.signals.lock.withLock { child.uthread = UThread.current }
            cj_resume_application(start.pointer)
        }
        return Int64(tid)
    }
}

struct UnsafeSendableBlock: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ p: UnsafeMutableRawPointer) { pointer = p }
}
