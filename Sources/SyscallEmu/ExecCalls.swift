// ExecCalls.swift: execve and execveat inside the instance. The new program replaces
// the old one in this process, as the kernel's execve replaces an address space: the
// file is checked and parsed first (errors return to the caller); past that point the
// other threads end, the application's mappings and program break go, handlers reset,
// close-on-exec descriptors close, and the calling thread returns into the new
// program's entry with Linux's initial registers; a vfork parent waiting for this
// child goes on (ForkCalls.swift).
import CJunction
import FileSystem
import Loader
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Tunables: Linux's limits for the strings execve copies.
    static let maxArgumentStrings = 0x7FFF_FFFF
    static let maxArgumentBytes = 2 << 20  // ARG_MAX as `getconf ARG_MAX` reports for an 8 MiB stack

    static func registerExec(_ d: Dispatcher) {
        d.register(.execve) { f, p throws(LinuxError) in
            try execve(f, p, path: try UserMemory.string(f.a0), base: nil, argv: f.a1, envp: f.a2, flags: 0)
        }
        d.register(.execveat) { f, p throws(LinuxError) in
            let emptyPath: UInt64 = 0x1000, noFollow: UInt64 = 0x100
            guard f.a4 & ~(emptyPath | noFollow) == 0 else { throw LinuxError(.EINVAL) }
            let path = try UserMemory.string(f.a1)
            if path.isEmpty && f.a4 & emptyPath != 0 {
                // fexecve: the file behind the descriptor.
                return try execve(f, p, path: try p.fd(f.a0).location.path, base: nil, argv: f.a2, envp: f.a3, flags: 0)
            }
            return try execve(f, p, path: path, base: try p.base(f.a0, for: path), argv: f.a2, envp: f.a3, flags: f.a4)
        }
    }

    /// A NULL-terminated array of string pointers (argv, envp), each string's bytes kept
    /// exactly (they need not be UTF-8).
    static func stringArray(_ address: UInt64, budget: inout Int) throws(LinuxError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        if address == 0 { return out }
        var i: UInt64 = 0
        while true {
            let ptr = try UserMemory.load(UInt64.self, at: address + 8 * i)
            if ptr == 0 { return out }
            let s = try UserMemory.cStringBytes(ptr, limit: 128 * 1024)  // MAX_ARG_STRLEN
            budget -= s.count + 1 + 8
            guard budget >= 0, out.count < maxArgumentStrings else { throw LinuxError(.E2BIG) }
            out.append(s)
            i += 1
        }
    }

    static func execve(_ f: SyscallFrame, _ p: LinuxProcess, path: String, base: Location?, argv: UInt64, envp: UInt64,
                       flags: UInt64) throws(LinuxError) -> Int64 {
        guard let t = AppThread.current else { throw LinuxError(.EINVAL) }
        var budget = maxArgumentBytes
        let arguments = try stringArray(argv, budget: &budget)
        let environment = try stringArray(envp, budget: &budget)
        // Resolve through the VFS (permissions, symlinks, the cwd), then load the host file
        // at that path: the program's bytes come from the host root.
        let location = try fsCall { () throws(Errno) in try p.fs.resolve(path, at: base, followSymlinks: flags & 0x100 == 0) }
        if location.node.kind == .directory { throw LinuxError(.EACCES) }
        if location.node.kind == .symlink { throw LinuxError(.ELOOP) }
        let resolved: ResolvedProgram
        do { resolved = try Loader.resolve(path: location.path, argumentBytes: arguments) } catch {
            throw LinuxError(error.errno)
        }

        // The point of no return: the old program goes.
        if p.signals.requestExit(allBut: t) > 0 {
            let deadline = MonotonicInstant.now.advanced(by: .seconds(2))
            while p.signals.threadCount > 1 && MonotonicInstant.now < deadline { UThread.sleep(for: .microseconds(200)) }
        }
        if t.tid != p.pid { t.tid = p.pid }  // the thread that execs becomes the leader
        p.addressSpace.removeAll { r in munmap(UnsafeMutableRawPointer(bitPattern: UInt(r.lowerBound)), Int(r.count)) }
        cj_rewrite_forget_redirects()
        p.programBreak.release()
        let ready: ReadyProgram
        do { ready = try Loader.map(resolved, environmentBytes: environment) } catch {
            // Nothing to return to: the process dies as Linux kills it after this point.
            Dispatcher.log("junction: execve \(resolved.path): \(error) after the old program was gone")
            p.signals.terminate(by: SIGSEGV)
        }
        do { try p.programBreak.reset(start: ready.main.breakStart) } catch { p.signals.terminate(by: SIGSEGV) }
        p.addressSpace.add(ready.main.range)
        if let i = ready.interpreter { p.addressSpace.add(i.range) }
        p.addressSpace.setStack(ready.stack)
        p.signals.resetForExec(t)
        p.descriptors.closeOnExecAll()
        p.compat.timers.deleteAll()  // POSIX timers do not survive execve (itimers do)
        releaseVforkParent(p)
        t.clearChildTID = 0
        p.executablePath = resolved.path
        p.name = String(location.path.split(separator: "/").last?.prefix(15) ?? "")
        p.commandLine = resolved.arguments
        p.environment = environment

        // Linux's registers at the new entry: all zero but rsp and rip; flags with IF only.
        let raw = f.raw
        raw.pointee.rax = 0; raw.pointee.rbx = 0; raw.pointee.rcx = 0; raw.pointee.rdx = 0
        raw.pointee.rsi = 0; raw.pointee.rdi = 0; raw.pointee.rbp = 0
        raw.pointee.r8 = 0; raw.pointee.r9 = 0; raw.pointee.r10 = 0; raw.pointee.r11 = 0
        raw.pointee.r12 = 0; raw.pointee.r13 = 0; raw.pointee.r14 = 0; raw.pointee.r15 = 0
        raw.pointee.rsp = ready.stackPointer
        raw.pointee.rip = ready.entry
        raw.pointee.rflags = 0x202
        raw.pointee.fs_base = 0
        cj_frame_reset_vector_state(raw)
        return 0
    }
}
