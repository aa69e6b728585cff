// ElfRunTests.swift: differential tests: each program runs natively and through
// Examples/elf-run (our Loader, in-process); output and exit code must match.
import Foundation
import Testing
@testable import Loader

@Suite("elf-run versus native", .serialized, .timeLimit(.minutes(3)))
struct ElfRunTests {
    static let environment = ["A": "1", "PATH": "/usr/bin:/bin", "LANG": "C", "EMPTY": ""]

    /// Runs `program args` natively and through elf-run; expects identical results.
    func same(_ program: String, _ args: [String], stdin: String? = nil,
              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let native = try Fixtures.run(program, args, environment: Self.environment, stdin: stdin)
        let ours = try Fixtures.run(Fixtures.elfRun, [program] + args, environment: Self.environment, stdin: stdin)
        #expect(ours == native, "native:\n\(native)\nelf-run:\n\(ours)", sourceLocation: sourceLocation)
    }

    @Test("a C program sees the same argv, envp and auxv, and does the same work",
          arguments: [("static", ["-static"]), ("static-pie", ["-static-pie"]), ("dynamic", [])])
    func startup(_ variant: String, _ flags: [String]) throws {
        let prog = try Fixtures.compile("startup", flags: flags, as: "startup-\(variant)")
        try same(prog, ["alpha", "5", "with space", ""])
        try same(prog, [])
    }

    @Test("busybox applets", arguments: [
        ["echo", "-n", "hello", "world"],
        ["sha256sum", "/etc/passwd"],
        ["wc", "-l", "/etc/passwd"],
        ["sort", "-r", "/etc/passwd"],
        ["grep", "-c", "root", "/etc/passwd"],
        ["sed", "-n", "s/root/ROOT/p", "/etc/passwd"],
        ["awk", "-F:", "{ n += length($1) } END { print n, NR }", "/etc/passwd"],
        ["find", "/usr/share/doc/busybox-static", "-maxdepth", "1"],
        ["ls", "-la", "/usr/share/doc/busybox-static"],
        ["sh", "-c", "x=0; for i in 1 2 3; do x=$((x+i)); done; echo $x; exit 4"],
        ["false"],
        ["nonexistent-applet"],
    ])
    func busybox(_ args: [String]) throws {
        try same("/bin/busybox", args)
    }

    @Test("cat and wc read stdin")
    func stdinPassthrough() throws {
        try same("/bin/busybox", ["wc", "-c"], stdin: String(repeating: "abc\n", count: 1000))
    }

    @Test("#! scripts: interpreter, optional argument, argv rewriting, nesting")
    func scripts() throws {
        let inner = try Fixtures.write("inner.sh", "#!/bin/busybox sh\necho \"inner: $0 [$#] $*\"\nexit 3\n")
        try same(inner, ["one", "two words"])
        let withArg = try Fixtures.write("witharg.sh", "#! /bin/busybox  sh -e \nfalse\necho unreachable\n")
        try same(withArg, [])
        // A script whose interpreter is itself a script.
        let outer = try Fixtures.write("outer", "#!\(inner) extra\n")
        try same(outer, ["z"])
    }

    @Test("dynamic interpreters: python3 and perl")
    func dynamicInterpreters() throws {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") {
            try same("/usr/bin/python3", ["-c", "import sys, os, hashlib, threading\n"
                + "print(sys.argv, os.environ.get('A'))\n"
                + "r = []\nt = threading.Thread(target=lambda: r.append(hashlib.sha256(b'x' * 100000).hexdigest()))\n"
                + "t.start(); t.join(); print(r[0]); sys.exit(9)"])
        }
        try same("/usr/bin/perl", ["-e", "print join(',', @ARGV, scalar(keys %ENV)), \"\\n\"; exit 2", "p", "q"])
    }

    @Test("bad files get a clear message and a shell's exit code")
    func badFiles() throws {
        let text = try Fixtures.write("notes.txt", "just text\n")
        var r = try Fixtures.run(Fixtures.elfRun, [text])
        #expect(r.status == 126)
        #expect(r.stderr.contains("not an ELF executable or #! script (ENOEXEC)"))

        r = try Fixtures.run(Fixtures.elfRun, ["/no/such/program"])
        #expect(r.status == 127)
        #expect(r.stderr.contains("No such file or directory"))

        let busybox = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "/bin/busybox")))
        let truncated = try Fixtures.writeBytes("truncated", Array(busybox.prefix(3000)))
        r = try Fixtures.run(Fixtures.elfRun, [truncated])
        #expect(r.status == 126)
        #expect(r.stderr.contains("lies outside the 3000-byte file"), "\(r)")

        var wrongMachine = busybox
        wrongMachine[18] = 183
        r = try Fixtures.run(Fixtures.elfRun, [try Fixtures.writeBytes("arm", wrongMachine)])
        #expect(r.stderr.contains("ELF machine 183 is not x86-64"), "\(r)")

        let noInterp = try Fixtures.write("badinterp.sh", "#!/no/such/interpreter\n")
        r = try Fixtures.run(Fixtures.elfRun, [noInterp])
        #expect(r.status == 127)
        #expect(r.stderr.contains("/no/such/interpreter"))
    }

    @Test("more than four levels of #! interpreters is ELOOP, as in Linux")
    func scriptDepth() throws {
        var previous = "/bin/busybox"
        var last = ""
        for i in 0..<6 {
            last = try Fixtures.write("level\(i)", "#!\(previous)\n")
            previous = last
        }
        #expect(throws: LoadError.scriptDepthExceeded(path: last)) { _ = try Loader.resolve(path: last, arguments: [last]) }
        #expect(LoadError.scriptDepthExceeded(path: last).errno == .tooManySymbolicLinkLevels)
        // Linux agrees: the native execve of the same chain fails with ELOOP.
        let native = try Fixtures.run("/usr/bin/env", [last])
        #expect(native.status == 126)
        #expect(native.stderr.contains("Too many levels of symbolic links"), "\(native)")
    }

    @Test("a fixed-address program whose range is taken is refused, not overlaid")
    func fixedRangeTaken() throws {
        let elf = try ELFFile.parse(HostFile(path: "/bin/busybox"))
        let range = Memory.roundDown(elf.addressRange.lowerBound)..<Memory.roundUp(elf.addressRange.upperBound)
        // Occupy the first page of busybox's range in this process, unless something of
        // this process (another test's mapping) holds part of the range already: taken
        // all the same.
        let occupied = Memory.map(range.lowerBound, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
        if case .success(let got) = occupied, got != range.lowerBound {
            Memory.unmap(got, 4096)
            Issue.record("MAP_FIXED_NOREPLACE placed the page at \(got), not \(range.lowerBound)")
            return
        }
        defer { if case .success = occupied { Memory.unmap(range.lowerBound, 4096) } }
        #expect(throws: LoadError.addressRangeTaken(path: "/bin/busybox", range: range)) {
            _ = try Mapper.map(elf, file: HostFile(path: "/bin/busybox"))
        }
    }
}
