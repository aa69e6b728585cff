// FileSystemTests.swift: MemFS and HostFS against the kernel (property-based, step by
// step), and the VFS rules that a random walk rarely reaches.
import FileSystem
import Foundation
import PropertyBased
import SystemPackage
import Testing
import UThreads

/// Runs `ops` on both sides, returning the first divergence.
func firstDivergence(_ ops: [FileOp], ours: OursApplier, host: HostApplier) -> String? {
    for (i, op) in ops.enumerated() {
        let a = ours.apply(op), b = host.apply(op)
        if a != b { return "step \(i) \(op): ours \(a), kernel \(b)\nsequence: \(ops.map(\.description))" }
    }
    return nil
}

@Suite("FileSystem differential", .timeLimit(.minutes(5)))
struct DifferentialTests {
    @Test("random operation sequences: MemFS behaves like the kernel's tmpfs")
    func memFSMatchesTmpfs() async {
        await propertyCheck(count: 500, input: Gen.int(in: 0...1_000_000).array(of: 1...80)) { numbers in
            let host = hostScratch("mem")
            defer { removeTree(host) }
            let vfs = VFS(root: MemFS(mode: 0o755))
            let ctx = try! FileSystemContext(vfs: vfs, credentials: .root)
            let diff = firstDivergence(numbers.map(FileOp.init), ours: OursApplier(ctx: ctx), host: HostApplier(root: host))
            #expect(diff == nil, "\(diff ?? "")")
        }
    }

    @Test("random operation sequences: HostFS (io_uring from uthreads) behaves like the kernel")
    func hostFSMatchesKernel() async {
        let rt = try! Runtime(RuntimeConfiguration(kthreads: 2))
        let io = HostIO(runtime: rt)
        #expect(io.mode == .ioUring)
        await propertyCheck(count: 300, input: Gen.int(in: 0...1_000_000).array(of: 1...80)) { numbers in
            let ourDir = hostScratch("hostfs"), reference = hostScratch("ref")
            defer { removeTree(ourDir); removeTree(reference) }
            let ops = numbers.map(FileOp.init)
            let diff = rt.spawn { () -> String? in
                let vfs = VFS(root: try! HostFS(hostRoot: ourDir, io: io))
                let ctx = try! FileSystemContext(vfs: vfs, credentials: .root)
                return firstDivergence(ops, ours: OursApplier(ctx: ctx), host: HostApplier(root: reference))
            }.join()
            #expect(diff == nil, "\(diff ?? "")")
        }
        #expect(io.statistics.completed > 0)
        rt.shutdown()
    }
}

@Suite("VFS rules", .timeLimit(.minutes(2)))
struct VFSRuleTests {
    func context() -> FileSystemContext {
        try! FileSystemContext(vfs: VFS(root: MemFS(mode: 0o755)), credentials: .root)
    }

    @Test("a symlink loop is ELOOP after 40 links, as in Linux")
    func symlinkLoop() throws {
        let ctx = context()
        try ctx.makeSymlink("b", at: "a")
        try ctx.makeSymlink("a", at: "b")
        #expect(throws: Errno.tooManySymbolicLinkLevels) { try ctx.status("a") }
        // A chain of 40 resolves; 41 does not (the kernel's MAXSYMLINKS).
        try ctx.makeDirectory("c")
        try ctx.makeSymlink("c", at: "s0")
        for i in 1...40 { try ctx.makeSymlink("s\(i - 1)", at: "s\(i)") }
        #expect(try ctx.status("s39").kind == .directory)
        #expect(throws: Errno.tooManySymbolicLinkLevels) { try ctx.status("s40") }
        let host = hostScratch("loop")
        defer { removeTree(host) }
        symlink("c", host + "/s0"); mkdir(host + "/c", 0o755)
        for i in 1...40 { symlink("s\(i - 1)", host + "/s\(i)") }
        var st = stat()
        #expect(stat(host + "/s39", &st) == 0)
        #expect(stat(host + "/s40", &st) == -1 && errno == ELOOP)
    }

    @Test("ENAMETOOLONG for a long component and a long path")
    func nameTooLong() {
        let ctx = context()
        #expect(throws: Errno.fileNameTooLong) { try ctx.makeDirectory(String(repeating: "n", count: 256)) }
        #expect(throws: Errno.fileNameTooLong) { try ctx.status(String(repeating: "a/", count: 2100)) }
        #expect(throws: Never.self) { try ctx.makeDirectory(String(repeating: "n", count: 255)) }
    }

    @Test("mounts: crossing, .. out of a mount, EXDEV and EBUSY")
    func mounts() throws {
        let vfs = VFS(root: MemFS(mode: 0o755))
        let ctx = try FileSystemContext(vfs: vfs, credentials: .root)
        try ctx.makeDirectory("/tmp")
        try ctx.makeDirectory("/dev")
        try vfs.mount(MemFS(), at: "/tmp")
        try vfs.mount(DevFS(), at: "/dev")
        _ = try ctx.open("/tmp/f", flags: [.create, .writeOnly])
        _ = try ctx.open("/g", flags: [.create, .writeOnly])
        #expect(try ctx.status("/tmp/../g").kind == .regular)
        #expect(throws: Errno.improperLink) { try ctx.rename("/tmp/f", to: "/f") }
        #expect(throws: Errno.improperLink) { try ctx.link("/g", to: "/tmp/g") }
        #expect(throws: Errno.resourceBusy) { try ctx.removeDirectory("/tmp") }
        #expect(try ctx.status("/tmp").permissions == 0o1777)
        try ctx.changeDirectory("/tmp")
        #expect(ctx.currentDirectoryPath == "/tmp")
        #expect(try ctx.status("f").kind == .regular)
        try ctx.changeDirectory("..")
        #expect(ctx.currentDirectoryPath == "/")
    }

    @Test("unlinked open files stay readable; O_TMPFILE files have no name")
    func unlinkOpenFile() throws {
        let ctx = context()
        let f = try ctx.open("x", flags: [.create, .readWrite])
        _ = try f.write(bytes: Array("hello".utf8))
        try ctx.unlink("x")
        #expect(throws: Errno.noSuchFileOrDirectory) { try ctx.status("x") }
        #expect(String(decoding: try f.read(count: 5, at: 0), as: UTF8.self) == "hello")
        let t = try ctx.open(".", flags: [.temporaryFile, .readWrite])
        _ = try t.write(bytes: Array("tmp".utf8))
        #expect(try t.seek(0, whence: .end) == 3)
        #expect(try ctx.open(".", flags: .directory).readDirectoryNames() == [".", ".."])
    }

    @Test("umask and permission bits apply to new nodes")
    func umask() throws {
        let ctx = context()
        ctx.setUmask(0o027)
        _ = try ctx.open("f", flags: [.create, .writeOnly], mode: 0o666)
        try ctx.makeDirectory("d", mode: 0o777)
        #expect(try ctx.status("f").permissions == 0o640)
        #expect(try ctx.status("d").permissions == 0o750)
        try ctx.changeMode("f", mode: 0o4755)
        #expect(try ctx.status("f").permissions == 0o4755)
    }

    @Test("a non-root user is refused by permission bits")
    func permissions() throws {
        let vfs = VFS(root: MemFS(mode: 0o755))
        let root = try FileSystemContext(vfs: vfs, credentials: .root)
        try root.makeDirectory("locked", mode: 0o700)
        _ = try root.open("ro", flags: [.create, .writeOnly], mode: 0o444)
        let user = try FileSystemContext(vfs: vfs, credentials: Credentials(uid: 1000, gid: 1000))
        #expect(throws: Errno.permissionDenied) { try user.status("locked/x") }
        #expect(throws: Errno.permissionDenied) { try user.open("ro", flags: .writeOnly) }
        #expect(throws: Errno.permissionDenied) { try user.makeDirectory("mine") }
        #expect(throws: Never.self) { try user.open("ro", flags: []) }
    }

    @Test("lseek: SEEK_END, SEEK_DATA/HOLE bounds, negative results are EINVAL; holes read as zeros")
    func seekAndHoles() throws {
        let ctx = context()
        let f = try ctx.open("s", flags: [.create, .readWrite])
        _ = try f.write(bytes: [1], at: 100_000)
        #expect(try ctx.status("s").size == 100_001)
        #expect(try ctx.status("s").blocks == 8)  // one page
        #expect(try f.seek(0, whence: .end) == 100_001)
        #expect(throws: Errno.invalidArgument) { try f.seek(-200_000, whence: .current) }
        #expect(throws: Errno.noSuchAddressOrDevice) { try f.seek(200_000, whence: .data) }
        #expect(try f.read(count: 10, at: 50_000) == [UInt8](repeating: 0, count: 10))
    }
}

