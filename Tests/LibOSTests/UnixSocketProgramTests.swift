// UnixSocketProgramTests.swift: AF_UNIX sockets differentially (C programs and python3
// run natively and under junction), and across the instance's edge: a host daemon
// reached from inside, an instance's listener reached from the host (--unix-export).
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two fresh directories of the same path length, one for each run (socket names are
/// printed with their lengths).
func unixScratchPair(_ tag: String) -> (native: String, junction: String) {
    let base = Junction.scratch.appendingPathComponent("ux-\(tag)-\(UInt32.random(in: 0...UInt32.max))").path
    for d in [base + "-n", base + "-j"] { try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
    return (base + "-n", base + "-j")
}

let hasPython = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

@Suite("AF_UNIX sockets, native versus junction", .serialized, .timeLimit(.minutes(3)))
struct UnixSocketProgramTests {
    @Test("C programs: names, streams, datagrams and seqpacket, descriptors and credentials, /proc/net/unix",
          arguments: ["unix_names", "unix_stream", "unix_dgram", "unix_rights"])
    func programs(_ name: String) throws {
        let program = try Junction.compile(name, ["-I", testProgramsDirectory.path], as: name)
        let (n, j) = unixScratchPair(name)
        let native = try Junction.run(program, [n])
        let ours = try Junction.run(Junction.binary, ["--", program, j])
        #expect(native.status == 0, "\(native)")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("python3: socketserver.UnixStreamServer, asyncio.start_unix_server, multiprocessing.connection, send_fds/recv_fds",
          .enabled(if: hasPython))
    func python() throws {
        let (n, j) = unixScratchPair("py")
        let script = testProgramsDirectory.appendingPathComponent("unix_python.py").path
        let native = try Junction.run("/usr/bin/python3", [script, n])
        let ours = try Junction.run(Junction.binary, ["--", "/usr/bin/python3", script, j])
        #expect(native.status == 0, "\(native)")
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }
}
