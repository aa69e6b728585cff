// JunctionTests.swift: differential tests of the junction executable: unmodified
// programs (busybox, dynamic /bin/ls, perl, python3 with threads, C programs using
// pthreads) run natively and under junction must print the same and exit the same.
import Foundation
import TestSupport
import Testing

enum Junction {
    static var binary: String { siblingExecutable("junction") }
    static var scratch: URL { testScratchDirectory }
    static let environment = ["PATH": "/usr/bin:/bin", "LANG": "C", "HOME": "/root", "A": "1"]

    static func compile(_ name: String, _ flags: [String], as out: String) throws -> String {
        try compileTestProgram(name, flags: flags, as: out)
    }

    static func run(_ path: String, _ args: [String], stdin: String? = nil) throws -> ProcessOutput {
        try runProcess(path, args, environment: environment, stdin: stdin)
    }

    /// Runs natively and under junction; stdout, stderr and status must match.
    static func same(_ program: String, _ args: [String], stdin: String? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let native = try run(program, args, stdin: stdin)
        let ours = try run(binary, ["--", program] + args, stdin: stdin)
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)", sourceLocation: sourceLocation)
    }
}

/// Whether python3 is installed (scripts/deps.sh installs it): its tests are skipped visibly without it.
let hasPython3 = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

/// The programs the seccomp trap path runs.
let seccompTrapCommands: [[String]] = [
    ["/bin/busybox", "sha256sum", "/etc/passwd"],
    ["/bin/ls", "-la", "/usr/share/doc/busybox-static"],
    ["/usr/bin/python3", "-c", "import threading, queue\nq = queue.Queue()\nt = threading.Thread(target=lambda: q.put(42))\nt.start(); t.join(); print(q.get())"],
]

@Suite("junction versus native", .serialized, .timeLimit(.minutes(5)))
struct JunctionTests {
    @Test("busybox applets", arguments: [
        ["echo", "hello", "junction"],
        ["ls", "-la", "/usr/share/doc/busybox-static"],
        ["cat", "/etc/passwd"],
        ["wc", "-l", "/etc/passwd"],
        ["sort", "-r", "/etc/passwd"],
        ["sha256sum", "/etc/passwd"],
        ["find", "/usr/share/doc/busybox-static"],
        ["grep", "-n", "root", "/etc/passwd"],
        ["sed", "s/root/ROOT/g", "/etc/passwd"],
        ["awk", "-F:", "{ n += length($1) } END { print n, NR }", "/etc/passwd"],
        ["sh", "-c", "x=0; for i in 1 2 3 4; do x=$((x+i)); done; echo $x; exit 5"],
        ["false"],
    ])
    func busybox(_ args: [String]) throws {
        try Junction.same("/bin/busybox", args)
    }

    @Test("stdin reaches the program")
    func stdin() throws {
        try Junction.same("/bin/busybox", ["wc", "-c"], stdin: String(repeating: "xyz\n", count: 5000))
    }

    @Test("files: create, append, rename, link, list, read and remove through the VFS")
    func fileWork() throws {
        // One program per step (fork is not implemented yet), natively in one directory
        // and under junction in another; the outputs must match step by step.
        let base = Junction.scratch.appendingPathComponent("work-\(UInt32.random(in: 0...UInt32.max))").path
        let steps: [[String]] = [
            ["mkdir", "-p", "D/a/b"],
            ["sh", "-c", "echo one > D/a/f; echo two >> D/a/f; echo $?"],
            ["mv", "D/a/f", "D/a/b/g"],
            ["ln", "-s", "b/g", "D/a/l"],
            ["cat", "D/a/l"],
            ["ls", "-1", "D/a", "D/a/b"],
            ["stat", "-c", "%s %F %h", "D/a/b/g", "D/a/l", "D/a/b"],
            ["rm", "-r", "D/a"],
            ["ls", "D/a"],
        ]
        for step in steps {
            let native = try Junction.run("/bin/busybox", step.map { $0.replacingOccurrences(of: "D/", with: base + "-n/") })
            let ours = try Junction.run(Junction.binary, ["--", "/bin/busybox"] + step.map { $0.replacingOccurrences(of: "D/", with: base + "-j/") })
            #expect(ours.stdout.replacingOccurrences(of: base + "-j", with: "D") == native.stdout.replacingOccurrences(of: base + "-n", with: "D"), "\(step)")
            #expect(ours.stderr.replacingOccurrences(of: base + "-j", with: "D") == native.stderr.replacingOccurrences(of: base + "-n", with: "D"), "\(step)")
            #expect(ours.status == native.status, "\(step)")
        }
    }

    @Test("dynamic /bin/ls")
    func dynamicLs() throws {
        try Junction.same("/bin/ls", ["-la", "/usr/share/doc/busybox-static", "/etc/hostname"])
    }

    @Test("perl -e")
    func perl() throws {
        try Junction.same("/usr/bin/perl", ["-e", "my %h = map { $_ => length } @ARGV; print join(',', map { \"$_=$h{$_}\" } sort keys %h), \"\\n\"; exit 6", "alpha", "be"])
    }

    @Test("python3 with threading: locks, queues and conditions", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func pythonThreads() throws {
        let code = """
        import threading, queue, hashlib
        q = queue.Queue()
        lock = threading.Lock()
        cond = threading.Condition()
        total = [0]
        ready = [0]
        def producer(n):
            for i in range(200): q.put(i * n)
        def consumer():
            while True:
                v = q.get()
                if v is None: break
                with lock: total[0] += v
        def waiter():
            with cond:
                while ready[0] == 0: cond.wait()
        ps = [threading.Thread(target=producer, args=(k,)) for k in range(1, 5)]
        cs = [threading.Thread(target=consumer) for _ in range(3)]
        ws = [threading.Thread(target=waiter) for _ in range(4)]
        for t in ps + cs + ws: t.start()
        for t in ps: t.join()
        for _ in cs: q.put(None)
        for t in cs: t.join()
        with cond:
            ready[0] = 1
            cond.notify_all()
        for t in ws: t.join()
        print(total[0], hashlib.sha256(str(total[0]).encode()).hexdigest()[:16])
        """
        try Junction.same("/usr/bin/python3", ["-c", code])
    }

    @Test("C programs: startup state, and pthread condvar ping-pong among 8 threads",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func cPrograms(_ variant: String, _ flags: [String]) throws {
        let threads = try Junction.compile("threads", flags, as: "threads-\(variant)")
        try Junction.same(threads, [])
        let startup = try Junction.compile("startup", flags, as: "startup-\(variant)")
        try Junction.same(startup, ["one", "3", "two words"])
    }

    @Test("general registers, flags, vector registers and the red zone survive intercepted calls",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func registers(_ variant: String, _ flags: [String]) throws {
        let prog = try Junction.compile("registers", flags + ["-pthread"], as: "registers-\(variant)")
        // One kthread: the thread that fills the vector registers runs while the other
        // is blocked in a call. Also with the XSAVE fast path instead of moves.
        for (options, env) in [([], [:]), (["--kthreads", "1"], [:]), (["--kthreads", "1"], ["JUNCTION_FAST_PATH_XSAVE": "1"])] {
            let r = try runProcess(Junction.binary, options + ["--", prog], environment: Junction.environment.merging(env) { $1 })
            #expect(r.stdout == "registers preserved (code 0)\n", "\(options) \(env): \(r)")
            #expect(r.status == 0)
        }
    }

    @Test("the trap path alone (--intercept trap) gives the same results", arguments: [
        ["/bin/busybox", "sha256sum", "/etc/passwd"],
        ["/bin/ls", "-la", "/usr/share/doc/busybox-static"],
    ])
    func trapOnly(_ command: [String]) throws {
        let native = try Junction.run(command[0], Array(command.dropFirst()))
        let ours = try Junction.run(Junction.binary, ["--intercept", "trap", "--"] + command)
        #expect(ours == native)
        let regs = try Junction.run(Junction.binary, ["--intercept", "trap", "--", try Junction.compile("registers", ["-static", "-pthread"], as: "registers-static")])
        #expect(regs.stdout == "registers preserved (code 0)\n")
    }

    @Test("the seccomp trap path (--intercept seccomp) gives the same results, strace shows its calls", .enabled(if: seccompTrapCommands.allSatisfy { FileManager.default.isExecutableFile(atPath: $0[0]) }, "needs busybox, ls and python3"), arguments: seccompTrapCommands)
    func seccompTrap(_ command: [String]) throws {
        let native = try Junction.run(command[0], Array(command.dropFirst()))
        let ours = try Junction.run(Junction.binary, ["--intercept", "seccomp", "--"] + command)
        #expect(ours == native)
    }

    @Test("under --intercept seccomp: registers survive, signals behave, --strace sees the calls")
    func seccompRegistersAndSignals() throws {
        let traced = try Junction.run(Junction.binary, ["--intercept", "seccomp", "--strace", "--", "/bin/busybox", "true"])
        #expect(traced.stderr.contains("exit_group(0)"), "\(traced)")
        for variant in ["static", "dynamic"] {
            let prog = try Junction.compile("registers", variant == "static" ? ["-static", "-pthread"] : ["-pthread"], as: "registers-\(variant)")
            let regs = try Junction.run(Junction.binary, ["--intercept", "seccomp", "--", prog])
            #expect(regs.stdout == "registers preserved (code 0)\n")
            let sig = try Junction.compile("signals_more", variant == "static" ? ["-static", "-pthread"] : ["-pthread"],
                                           as: "signals_more-\(variant)")
            #expect(try Junction.run(Junction.binary, ["--intercept", "seccomp", "--", sig]) == (try Junction.run(sig, [])))
        }
    }

    @Test("a program that crashes dies of its signal, as it would natively")
    func crash() throws {
        let native = try Junction.run("/usr/bin/perl", ["-e", "kill 'SEGV', $$"])
        let r = try Junction.run(Junction.binary, ["--", "/bin/busybox", "sh", "-c", "kill -SEGV $$"])
        #expect(native.status == 128 + 11)
        // kill(2) within the instance: SIGSEGV's default action ends the instance with it.
        #expect(r.status == 128 + 11, "\(r)")
        // A real fault in application code without a handler.
        try Junction.same(try Junction.compile("signals_more", ["-pthread"], as: "signals_more"), ["segv"])
        // A signal frame whose vector state a handler broke: sigreturn ends it with SIGSEGV.
        try Junction.same(try Junction.compile("signals_more", ["-pthread"], as: "signals_more"), ["badfp"])
    }

    @Test("faults handled by the program, the alternate stack, per-thread masks, EINTR and SA_RESTART, sigsuspend, sigtimedwait, alarm",
          arguments: [("static", ["-static", "-pthread"]), ("dynamic", ["-pthread"])])
    func signalSemantics(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("signals_more", flags, as: "signals_more-\(variant)"), [])
    }

    @Test("bad pointers, descriptors and values get Linux's EFAULT, EBADF and EINVAL",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func badArguments(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("badargs", flags, as: "badargs-\(variant)"), [])
    }

    @Test("memory: brk, anonymous and file mappings, mprotect, mremap, madvise, munmap, mincore, msync",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func memory(_ variant: String, _ flags: [String]) throws {
        let file = Junction.scratch.appendingPathComponent("mapped-\(variant)").path
        try Junction.same(try Junction.compile("memory", flags, as: "memory-\(variant)"), [file])
    }

    @Test("python3: sqlite3 (record locks), utime, chown, chmod, fchmod, flock, fcntl locks on a host file", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func pythonFiles() throws {
        try Junction.same("/usr/bin/python3", ["-c", """
            import sqlite3, tempfile, os, fcntl, struct
            d = tempfile.mkdtemp()
            db = sqlite3.connect(d + '/x.db')
            db.execute('create table t(a)')
            db.executemany('insert into t values (?)', [(i,) for i in range(1000)])
            db.commit()
            print(db.execute('select sum(a) from t').fetchone())
            p = d + '/f'
            open(p, 'w').close()
            os.utime(p, ns=(10**18, 2 * 10**18))
            st = os.stat(p)
            print(st.st_atime_ns, st.st_mtime_ns)
            os.chown(p, 1, 2)
            os.chmod(p, 0o600)
            fd = os.open(p, os.O_RDWR)
            os.fchmod(fd, 0o640)
            st = os.stat(p)
            print(st.st_uid, st.st_gid, oct(st.st_mode))
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 10, 0))
            print('own lock does not conflict:', struct.unpack('hhqqi', got)[0] == fcntl.F_UNLCK)
            try:
                fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack('hhqqi', 7, 0, 0, 10, 0))
            except OSError as e:
                print('bad lock type:', e.errno)
            """])
    }

    @Test("python3 asyncio: epoll, socketpair, eventfd, pipes with reader callbacks", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func pythonAsyncio() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("asyncio_epoll.py").path])
    }

    @Test("an unmodified Go program: goroutines, sync.Cond, files, signal.Notify, timers")
    func goProgram() throws {
        let source = testProgramsDirectory.appendingPathComponent("gosmoke").path
        let binary = Junction.scratch.appendingPathComponent("gosmoke").path
        let cache = Junction.scratch.appendingPathComponent("gocache").path
        if !FileManager.default.fileExists(atPath: binary) {
            let built = try runProcess("/usr/bin/go", ["build", "-o", binary, "."],
                                       environment: ["PATH": "/usr/bin:/bin", "HOME": Junction.scratch.path, "GOCACHE": cache,
                                                     "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"],
                                       currentDirectory: source)
            try #require(built.status == 0, "go build failed (scripts/deps.sh installs golang-go): \(built)")
        }
        try Junction.same(binary, [])
    }

    @Test("/proc/self: cmdline, comm, status, exe, fd links, maps of the application, host files, cwd", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func procSelf() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("proc.py").path])
        // busybox's own view: the maps lines are the program's, not junction's.
        let maps = try Junction.run(Junction.binary, ["--", "/bin/busybox", "cat", "/proc/self/maps"])
        #expect(maps.stdout.contains("/usr/bin/busybox") && maps.stdout.contains("[stack]"), "\(maps)")
        #expect(!maps.stdout.contains("libswiftCore") && !maps.stdout.contains("/junction"), "\(maps)")
    }

    @Test("execve: errors return, then the new program replaces the old (threads end, close-on-exec, handlers reset)", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func execve() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("exec.py").path])
        // A shell's exec of a static program, and a chain of two execs.
        try Junction.same("/bin/busybox", ["sh", "-c", "exec /bin/busybox sh -c 'exec /bin/busybox echo twice exec-ed: $0' hello"])
    }

    @Test("a write to a pipe without readers raises SIGPIPE")
    func sigpipe() throws {
        try Junction.same(try Junction.compile("signals_more", ["-pthread"], as: "signals_more"), ["sigpipe"])
    }

    @Test("signals from outside reach the program: a handler runs in a loop that makes no calls; SIGTERM's default ends it")
    func outsideSignals() throws {
        let prog = try Junction.compile("signals_more", ["-pthread"], as: "signals_more")
        for (program, args) in [(prog, ["spin"]), (Junction.binary, ["--", prog, "spin"])] {
            let r = try runSignalled(program, args, after: "spinning\n", signal: SIGUSR1)
            #expect(r.stdout == "spinning\nhandled in the loop: 10\n" && r.status == 0, "\(program): \(r)")
        }
        for (program, args) in [(prog, ["wait"]), (Junction.binary, ["--", prog, "wait"])] {
            let r = try runSignalled(program, args, after: "ready\n", signal: SIGTERM)
            #expect(r.stdout == "ready\n" && r.status == 128 + SIGTERM, "\(program): \(r)")
            // A fault signal sent from outside is a signal, not a fault: its default action.
            let s = try runSignalled(program, args, after: "ready\n", signal: SIGSEGV)
            #expect(s.stdout == "ready\n" && s.status == 128 + SIGSEGV, "\(program): \(s)")
        }
    }

    /// Starts `program`, waits for it to print `line`, sends it `signal`, and collects
    /// the rest (a 20 s limit guards against a signal that never arrives).
    func runSignalled(_ program: String, _ args: [String], after line: String, signal: Int32) throws -> ProcessOutput {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        p.environment = Junction.environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).hasSuffix(line) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        kill(p.processIdentifier, signal)
        let killer = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: killer)
        seen.append(out.fileHandleForReading.readDataToEndOfFile())
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        killer.cancel()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return ProcessOutput(stdout: String(decoding: seen, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self), status: status)
    }

    @Test("a signal the parent ignored starts ignored, as exec keeps it", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func inheritedIgnore() throws {
        let script = "import signal; print(signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGUSR2))"
        let native = try Junction.run("/bin/sh", ["-c", "trap '' USR1; exec /usr/bin/python3 -c '\(script)'"])
        let ours = try Junction.run("/bin/sh", ["-c", "trap '' USR1; exec \(Junction.binary) -- /usr/bin/python3 -c '\(script)'"])
        #expect(native.stdout == "1 0\n")  // SIG_IGN, SIG_DFL as this python3 prints them
        #expect(ours == native)
    }

    @Test("python3: a SIGALRM handler interrupts time.sleep; SIGINT raises KeyboardInterrupt", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func pythonAlarm() throws {
        try Junction.same("/usr/bin/python3", ["-c", """
            import signal, time, os
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM, signal.SIGINT})
            class Alarm(Exception): pass
            def h(s, f): raise Alarm()
            signal.signal(signal.SIGALRM, h)
            signal.alarm(1)
            t = time.monotonic()
            try:
                time.sleep(10)
            except Alarm:
                print("alarm after", round(time.monotonic() - t))
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
            """])
    }

    @Test("signals to the instance itself run the application's handlers and resume it",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func signalHandlers(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("signals", flags, as: "signals-\(variant)"), [])
    }

    @Test("python3 signal handlers", .enabled(if: hasPython3, "needs /usr/bin/python3"))
    func pythonSignals() throws {
        try Junction.same("/usr/bin/python3", ["-c", "import signal, os\ngot = []\n"
            + "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})\n"
            + "signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))\n"
            + "os.kill(os.getpid(), signal.SIGUSR1)\nos.kill(os.getpid(), signal.SIGUSR1)\nprint(got)"])
    }

    @Test("an instance whose program sleeps uses almost no CPU")
    func idleInstance() throws {
        // posix_spawn + wait4: the CPU time of exactly this child.
        var pid: pid_t = 0
        let words: [String] = [Junction.binary, "--", "/bin/busybox", "sleep", "1"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        #expect(posix_spawn(&pid, Junction.binary, nil, nil, argv, environ) == 0)
        var status: Int32 = 0
        var usage = rusage()
        #expect(wait4(pid, &status, 0, &usage) == pid)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        #expect(status == 0)
        // Start-up (loading, the runtime, the file systems) is a few tens of ms; a kthread
        // that polled instead of sleeping would burn most of the second.
        #expect(cpu < 0.3, "junction used \(cpu) s of CPU while its program slept for 1 s")
    }

    @Test("an unknown system call returns ENOSYS and is logged once")
    func unknownSyscall() throws {
        let prog = try Junction.compile("enosys", [], as: "enosys")
        let native = try Junction.run(prog, [])
        let ours = try Junction.run(Junction.binary, ["--", prog])
        #expect(ours.stdout == native.stdout)
        #expect(ours.stdout.contains("Function not implemented"))
        #expect(ours.stderr.components(separatedBy: "unsupported system call 500").count == 2, "\(ours.stderr)")
    }

    @Test("--strace prints calls and results")
    func strace() throws {
        let r = try Junction.run(Junction.binary, ["--strace", "--", "/bin/busybox", "echo", "hi"])
        #expect(r.stdout == "hi\n")
        #expect(r.stderr.contains("write(1, "))
        #expect(r.stderr.contains(") = 3"))
        #expect(r.stderr.contains("exit_group(0)"))
    }

    @Test("bad invocations get a clear message and a shell's status")
    func errors() throws {
        var r = try Junction.run(Junction.binary, ["--", "no-such-program-xyz"])
        #expect(r.status == 127)
        #expect(r.stderr.contains("no-such-program-xyz: command not found"))
        r = try Junction.run(Junction.binary, ["--", "/etc/passwd"])
        #expect(r.status == 126)
        r = try Junction.run(Junction.binary, ["--mount", "nonsense", "--", "/bin/true"])
        #expect(r.stderr.contains("bad --mount"))
        r = try Junction.run(Junction.binary, ["--mount", "memfs:/no/such/dir", "--", "/bin/true"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("mounting memfs on /no/such/dir: No such file or directory"), "\(r)")
        r = try Junction.run(Junction.binary, [])
        #expect(r.status != 0)
    }

    @Test("--mount memfs:/tmp gives the program an empty in-memory /tmp, from any working directory")
    func memfsMount() throws {
        // Shell builtins only (no fork): the glob lists the directory in-process.
        // Started from a directory below /tmp: the program keeps its working directory.
        let r = try runProcess(Junction.binary, ["--mount", "memfs:/tmp", "--", "/bin/busybox", "sh", "-c",
                                                 "echo /tmp/*; echo data > /tmp/x; read v < /tmp/x; echo $v; echo /tmp/*; pwd"],
                               environment: Junction.environment, currentDirectory: Junction.scratch.path)
        #expect(r.stdout == "/tmp/*\ndata\n/tmp/x\n\(Junction.scratch.path)\n", "\(r)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/x") || (try? String(contentsOfFile: "/tmp/x", encoding: .utf8)) != "data\n")
    }
}
