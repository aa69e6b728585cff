// RobustnessTests.swift: arguments a libOS easily gets wrong (issue 21), each compared
// with Linux: clone3 bounds, F_DUPFD bounds, *at calls with absolute paths and bad
// dirfds, directories opened for writing, offsets past INT64_MAX, F_GETFL, RLIMIT_NOFILE
// honoured by the descriptor table, and standard streams redirected to files.
import Foundation
import TestSupport
import Testing

@Suite("robustness versus native", .serialized, .timeLimit(.minutes(3)))
struct RobustnessTests {
    @Test("bad clone3, fcntl, *at, open, pread arguments and RLIMIT_NOFILE as Linux answers them",
          arguments: [("static", ["-static"]), ("dynamic", [])])
    func arguments(_ variant: String, _ flags: [String]) throws {
        try Junction.same(try Junction.compile("robust", flags, as: "robust-\(variant)"), [])
    }

    @Test("under a memfs /tmp the directory and offset cases answer as on the host")
    func memFSDirectories() throws {
        let program = try Junction.compile("robust", [], as: "robust-dynamic")
        let native = try Junction.run(program, [])
        let ours = try Junction.run(Junction.binary, ["--mount", "memfs:/tmp", "--", program])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("stdin and stdout redirected to files stay files: lseek, pread, pwrite, ftruncate, F_GETFL")
    func redirectedStreams() throws {
        let program = try Junction.compile("robust", [], as: "robust-dynamic")
        let dir = Junction.scratch.appendingPathComponent("streams-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hello world\n".write(toFile: dir + "/in.txt", atomically: true, encoding: .utf8)
        func run(_ prefix: String, _ out: String) throws -> ProcessOutput {
            try Junction.run("/bin/sh", ["-c", "\(prefix) '\(program)' stdio < '\(dir)/in.txt' > '\(dir)/\(out)'; od -c '\(dir)/\(out)'"])
        }
        let native = try run("", "native.txt")
        let ours = try run("'\(Junction.binary)' --", "junction.txt")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }
}
