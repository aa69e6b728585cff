// ByteNamesTests.swift: file names that are not UTF-8 on HostFS and MemFS, and host
// pseudo-terminals through /dev/ptmx and /dev/pts, differentially (compat_names.c).
import Foundation
import TestSupport
import Testing

@Suite("byte names and pseudo-terminals", .serialized, .timeLimit(.minutes(2)))
struct ByteNamesTests {
    static let hasPtys = access("/dev/ptmx", R_OK | W_OK) == 0 && access("/dev/pts", X_OK) == 0

    @Test("non-UTF-8 names on HostFS; openpty, posix_openpt, TIOCGPTPEER", .enabled(if: hasPtys))
    func onHostFS() throws {
        let prog = try Junction.compile("compat_names", [], as: "compat_names")
        let native = try Junction.run(prog, [try CompatibilityTests.freshDirectory("names-n")])
        let ours = try Junction.run(Junction.binary, ["--", prog, try CompatibilityTests.freshDirectory("names-j")])
        #expect(native.status == 0)
        #expect(native.stdout.contains("entry ff"))
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }

    @Test("non-UTF-8 names on MemFS", .enabled(if: hasPtys))
    func onMemFS() throws {
        let prog = try Junction.compile("compat_names", [], as: "compat_names")
        let native = try Junction.run(prog, [try CompatibilityTests.freshDirectory("names-n")])
        let dir = try CompatibilityTests.freshDirectory("names-m")
        let ours = try Junction.run(Junction.binary, ["--mount", "memfs:\(dir)", "--", prog, dir])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
    }
}
