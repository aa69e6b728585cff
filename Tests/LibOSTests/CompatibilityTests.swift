// CompatibilityTests.swift: the compatibility sweep's calls, differentially: C programs
// (file calls on HostFS and on MemFS, process-wide calls, timers and inotify) run natively
// and under junction must print the same; unknown calls are named as the kernel names
// them; Documentation/Syscalls.md's per-number table matches the dispatcher's.
import FileSystem
import Foundation
import SyscallEmu
import TestSupport
import Testing

@Suite("compatibility sweep", .serialized, .timeLimit(.minutes(3)))
struct CompatibilityTests {
    /// A fresh directory for one run.
    static func freshDirectory(_ tag: String) throws -> String {
        let dir = Junction.scratch.appendingPathComponent("compat-\(tag)-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("file calls on HostFS: umask, FIFOs, close_range, preadv/pwritev, copy_file_range, fallocate, splice, memfd, xattrs")
    func filesOnHostFS() throws {
        let prog = try Junction.compile("compat_files", ["-pthread"], as: "compat_files")
        let native = try Junction.run(prog, [try Self.freshDirectory("n")])
        let ours = try Junction.run(Junction.binary, ["--", prog, try Self.freshDirectory("j")])
        #expect(native.status == 0)
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("file calls on MemFS (FIFOs are the libOS's pipes there, xattrs its own)")
    func filesOnMemFS() throws {
        let prog = try Junction.compile("compat_files", ["-pthread"], as: "compat_files")
        let native = try Junction.run(prog, [try Self.freshDirectory("n")])
        let dir = try Self.freshDirectory("m")
        let ours = try Junction.run(Junction.binary, ["--mount", "memfs:\(dir)", "--", prog, dir])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("umask is the inherited one, and HostFS modes are exact")
    func inheritedUmask() throws {
        let dir = try Self.freshDirectory("umask")
        func script(_ tag: String, _ prefix: String) -> String {
            "umask 0002 && \(prefix)/bin/busybox touch \(dir)/\(tag) && \(prefix)/bin/busybox mkdir \(dir)/\(tag).d"
                + " && stat -c '%a' \(dir)/\(tag) \(dir)/\(tag).d"
        }
        let native = try Junction.run("/bin/sh", ["-c", script("n", "")])
        let ours = try Junction.run("/bin/sh", ["-c", script("j", Junction.binary + " -- ")])
        #expect(native.stdout == "664\n775\n")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("inotify on HostFS (the host's events) and MemFS (the libOS's)", arguments: ["hostfs", "memfs"])
    func inotify(_ fileSystem: String) throws {
        let prog = try Junction.compile("compat_inotify", [], as: "compat_inotify")
        let native = try Junction.run(prog, [try Self.freshDirectory("n")])
        let dir = try Self.freshDirectory("i")
        let mount = fileSystem == "memfs" ? ["--mount", "memfs:\(dir)"] : []
        let ours = try Junction.run(Junction.binary, mount + ["--", prog, dir])
        #expect(native.status == 0)
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("CPython's regression modules test_mmap, test_resource, test_time, test_fcntl and test_uuid pass under junction",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/lib/python3.11/test/test_mmap.py")))
    func cpythonModules() throws {
        let dir = try Self.freshDirectory("py")
        let ours = try runProcess(Junction.binary, ["--", "/usr/bin/python3", "-m", "test", "test_mmap", "test_resource", "test_time",
                                                          "test_fcntl", "test_uuid"],
                                  environment: Junction.environment, currentDirectory: dir)
        #expect(ours.status == 0, "\(ours.stdout)\n\(ours.stderr)")
        #expect(ours.stdout.contains("Tests result: SUCCESS"))
    }

    @Test("a pseudo-terminal master made non-blocking by FIONBIO or O_NONBLOCK reads EAGAIN when empty (test_pty's test_openpty hung)",
          .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/ptmx"), "no /dev/ptmx"))
    func nonBlockingTerminal() throws {
        try Junction.same(try Junction.compile("pty_nonblock", [], as: "pty_nonblock"), [])
    }

    @Test("terminal ioctls on a pseudo-terminal (python3's pty.spawn around both runs)",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func terminal() throws {
        let prog = try Junction.compile("compat_tty", [], as: "compat_tty")
        let spawn = "import pty, sys; pty.spawn(sys.argv[1:])"
        let native = try Junction.run("/usr/bin/python3", ["-c", spawn, prog])
        let ours = try Junction.run("/usr/bin/python3", ["-c", spawn, Junction.binary, "--", prog])
        #expect(native.stdout.contains("isatty 1"))
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("process-wide calls: identity, capabilities, scheduling, priorities, pkeys, errors")
    func processCalls() throws {
        try Junction.same(try Junction.compile("compat_process", [], as: "compat_process"), [])
    }

    @Test("itimers and POSIX timers deliver their signals")
    func timers() throws {
        try Junction.same(try Junction.compile("compat_timers", ["-pthread"], as: "compat_timers"), [])
    }

    @Test("the unsupported-call message names the call as the kernel does",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func callNames() throws {
        // lookup_dcookie (212): gone from Linux (ENOSYS natively too), never handled here.
        let code = "import ctypes, os; print(ctypes.CDLL(None).syscall(212, 0, 0, 0), ctypes.get_errno())"
        let ours = try Junction.run(Junction.binary, ["--", "/usr/bin/python3", "-c", code])
        #expect(ours.stderr.contains("unsupported system call 212 (lookup_dcookie)"), "\(ours.stderr)")
    }

    /// Documentation/Syscalls.md's per-number rows: number -> (name, status).
    static func documentedTable() throws -> [Int: (name: String, status: String)] {
        let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Documentation/Syscalls.md")
        let text = try String(contentsOf: doc, encoding: .utf8)
        var rows: [Int: (String, String)] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 5, let nr = Int(cells[1]) else { continue }
            rows[nr] = (cells[2], cells[3])
        }
        return rows
    }

    static func dispatcher() throws -> Dispatcher {
        let fs = try FileSystemContext(vfs: VFS(root: MemFS()))
        return Dispatcher(process: try LinuxProcess(fs: fs, programBreakStart: 0, executablePath: "/x"))
    }

    @Test("each call number has one handler in SyscallEmu (a second registration would silently replace the first)")
    func oneHandlerPerNumber() throws {
        let d = try Self.dispatcher()
        #expect(d.replacedRegistrations.isEmpty, "registered twice: \(d.replacedRegistrations)")
        #expect(d.registeredNumbers.count > 250)
    }

    @Test("SyscallNumber names every call the host's <asm/unistd_64.h> defines, with the same number",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h")))
    func numbersMatchTheHostHeader() throws {
        let header = try String(contentsOfFile: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", encoding: .utf8)
        let pattern = try Regex(#"#define __NR_(\w+) (\d+)"#)
        var count = 0
        for m in header.matches(of: pattern) {
            let name = String(m.output[1].substring ?? ""), nr = Int(String(m.output[2].substring ?? "")) ?? -1
            #expect(SyscallNumber(rawValue: nr)?.name == name, "__NR_\(name) is \(nr)")
            count += 1
        }
        #expect(count > 300)
        #expect(SyscallNumber.allCases.count >= count)
        for call in SyscallNumber.allCases { #expect(SyscallNumber.name(of: call.rawValue) == call.name) }
    }

    @Test("Syscalls.md lists every x86-64 call with the status the dispatcher gives it")
    func documentedStatusMatchesDispatcher() throws {
        let rows = try Self.documentedTable()
        let registered = Set(try Self.dispatcher().registeredNumbers)
        #expect(Set(rows.keys) == Set(SyscallNumber.allCases.map(\.rawValue)), "every x86-64 number has a row")
        for (nr, row) in rows.sorted(by: { $0.key < $1.key }) {
            #expect(row.name == SyscallNumber.name(of: nr), "row \(nr) names \(row.name)")
            let answered = ["done", "host", "partial"].contains(row.status)
            if answered { #expect(registered.contains(nr), "\(nr) \(row.name) is documented \(row.status) but has no handler") }
            if row.status == "ENOSYS" { #expect(!registered.contains(nr), "\(nr) \(row.name) has a handler but is documented ENOSYS") }
        }
        for nr in registered where nr < 512 {
            #expect(rows[nr] != nil, "handler for \(nr) has no row")
        }
    }

    @Test("at least 250 call numbers are answered")
    func answeredCount() throws {
        let answered = try Self.documentedTable().values.filter { ["done", "host", "partial"].contains($0.status) }.count
        #expect(answered >= 250, "\(answered) answered")
    }
}
