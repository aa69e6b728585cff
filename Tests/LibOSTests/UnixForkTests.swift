// UnixForkTests.swift: AF_UNIX socket pairs shared across fork (moved into host
// socketpairs before the fork), natively and under junction: a C program over stream,
// seqpacket and datagram pairs, and python's multiprocessing.Pipe; close-on-exec ends
// at a child's exec and pidfd_send_signal on /proc/PID (from CPython's test_signal).
import Foundation
import TestSupport
import Testing

@Suite("AF_UNIX pairs across fork under junction versus native", .serialized, .timeLimit(.minutes(3)))
struct UnixForkTests {
    @Test("socketpair + fork: bytes queued before the fork, both directions, records, end of file, a bulk transfer")
    func socketPairAcrossFork() throws {
        try Junction.same(try Junction.compile("unix_fork", [], as: "unix_fork"), [])
    }

    @Test("a close-on-exec pipe end closes at the child's exec; pidfd_send_signal on /proc/PID descriptors")
    func closeOnExecAndProcPidfd() throws {
        try Junction.same(try Junction.compile("fork_cloexec", [], as: "fork_cloexec"), [])
    }

    @Test("python3 multiprocessing.Pipe (duplex) and socket.socketpair with os.fork",
          .enabled(if: ProcessTests.python, "no python3"))
    func pythonPipe() throws {
        try Junction.same("/usr/bin/python3", [testProgramsDirectory.appendingPathComponent("multiprocessing_pipe.py").path])
    }
}
