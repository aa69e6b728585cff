// ProcessTests.swift: differential tests of processes under junction: shells with
// pipelines, command substitution, subshells, background jobs and traps; python3
// subprocess, os.fork and multiprocessing; gcc and make -j2; a C program covering
// wait4/waitid, statuses, SIGCHLD, process groups, zombies and pidfds; strace -f tags.
import Foundation
import TestSupport
import Testing

enum ProcessScripts {
    /// One shell script, deterministic in its output, that forks in every way a shell does.
    static let shell = """
    echo a | tr a b
    seq 1 100 | sort -rn | head -3 | tac
    x=$(ls / | grep -c .); test "$x" -gt 3 && echo count-ok
    echo "nested $(echo "inner $(echo deepest)")"
    sleep 0.1 & p=$!; wait $p; echo bg=$?
    (exit 7); echo sub=$?
    (cd /; pwd; echo in-subshell) | cat
    sh -c 'kill -TERM $$'; echo killed=$?
    trap 'echo trapped' USR1; kill -USR1 $$; echo after-trap
    echo 1 2 3 | xargs -n1 echo x
    printf 'b\\na\\nc\\n' | sort | while read l; do echo "line $l"; done
    f=$(mktemp); { echo one; sh -c 'echo two'; echo three; } > "$f"; cat "$f"; rm -f "$f"
    yes | head -c 100000 | wc -c
    false | true; echo pipe-status=$?
    exit 3
    """
}

@Suite("processes under junction versus native", .serialized, .timeLimit(.minutes(5)))
struct ProcessTests {
    static let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
    static let bash = FileManager.default.isExecutableFile(atPath: "/bin/bash")
    static let gcc = FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc")
    static let make = FileManager.default.isExecutableFile(atPath: "/usr/bin/make")

    @Test("busybox sh: pipelines, $(...), subshells, & and wait, traps, xargs, a shared file offset")
    func busyboxShell() throws {
        try Junction.same("/bin/busybox", ["sh", "-c", ProcessScripts.shell])
    }

    @Test("dash (/bin/sh): the same script")
    func dash() throws {
        try Junction.same("/bin/sh", ["-c", ProcessScripts.shell])
    }

    @Test("bash: the same script", .enabled(if: bash, "no /bin/bash"))
    func bashShell() throws {
        try Junction.same("/bin/bash", ["-c", ProcessScripts.shell])
    }

    @Test("wait4/waitid options, exit statuses and signal deaths, SIGCHLD, SIG_IGN and SA_NOCLDWAIT, zombies, process groups, pidfds, vfork, posix_spawn",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func waitSemantics(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("processes", flags, as: "processes-\(variant)"), [])
    }

    @Test("execve passes argv and envp as bytes: 0x80-0xff, invalid and valid UTF-8 reach the stack, /proc/self/cmdline and environ exactly")
    func execArgumentBytes() throws {
        try Junction.same(try Junction.compile("exec_bytes", [], as: "exec_bytes"), [])
    }

    @Test("python3 subprocess and os.fork: check_output, Popen with pipes both ways, a timeout, kill, waitpid",
          .enabled(if: python, "no python3"))
    func pythonSubprocess() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("subprocess_use.py").path])
    }

    @Test("python3 multiprocessing with the fork context: a Pool and a Process with a Queue",
          .enabled(if: python, "no python3"))
    func pythonMultiprocessing() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("multiprocessing_fork.py").path])
    }

    @Test("gcc compiles and links a C file; make -j2 runs two jobs", .enabled(if: gcc && make, "no gcc or make"))
    func gccAndMake() throws {
        let dir = Junction.scratch.appendingPathComponent("build-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "#include <stdio.h>\nint main(void) { puts(\"built under junction\"); return 4; }\n"
            .write(to: dir.appendingPathComponent("hello.c"), atomically: true, encoding: .utf8)
        let exe = dir.appendingPathComponent("hello").path
        let built = try Junction.run(Junction.binary, ["--", "/usr/bin/gcc", "-o", exe, dir.appendingPathComponent("hello.c").path])
        #expect(built.status == 0, "\(built)")
        let ran = try Junction.run(exe, [])
        #expect(ran.stdout == "built under junction\n")
        #expect(ran.status == 4)
        try "all: a b\n\t@echo done\na:\n\t@echo job a\nb:\n\t@echo job b\n"
            .write(to: dir.appendingPathComponent("Makefile"), atomically: true, encoding: .utf8)
        let native = try Junction.run("/usr/bin/make", ["-s", "-j2", "-C", dir.path])
        let ours = try Junction.run(Junction.binary, ["--", "/usr/bin/make", "-s", "-j2", "-C", dir.path])
        // The two jobs may finish in either order: compare the lines as sets.
        #expect(ours.stdout.split(separator: "\n").sorted() == native.stdout.split(separator: "\n").sorted())
        #expect(ours.status == native.status)
        #expect(ours.stderr == native.stderr)
    }

    @Test("--strace tags lines with the pid once there are several processes, as strace -f does")
    func straceTags() throws {
        let r = try Junction.run(Junction.binary, ["--strace", "--", "/bin/busybox", "sh", "-c", "/bin/busybox true; echo x"])
        #expect(r.stdout == "x\n")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("[pid ") && $0.contains("wait4(") })
        #expect(lines.contains { $0.hasPrefix("[pid ") && $0.contains("execve(") })
    }
}
