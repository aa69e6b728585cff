// ScriptAndStackTests.swift: `#!` line parsing by Linux's rules, and the initial stack
// layout read back word by word.
import Foundation
import Testing
@testable import Loader

@Suite("#! lines")
struct ScriptLineTests {
    func parse(_ s: String) throws -> ScriptLine? { try ScriptLine.parse(Array(s.utf8), path: "s") }

    @Test("interpreter and one unsplit argument, blanks trimmed")
    func basic() throws {
        #expect(try parse("#!/bin/sh\necho") == ScriptLine(interpreter: "/bin/sh", argument: nil))
        #expect(try parse("#! /usr/bin/env  python3 -u \n") == ScriptLine(interpreter: "/usr/bin/env", argument: "python3 -u"))
        #expect(try parse("#!\t/bin/busybox\tsh\t\n") == ScriptLine(interpreter: "/bin/busybox", argument: "sh"))
        #expect(try parse("#!/bin/true") == ScriptLine(interpreter: "/bin/true", argument: nil))
        #expect(try parse("not a script") == nil)
        #expect(try parse("#") == nil)
    }

    @Test("no interpreter, and a name cut by the 256-byte buffer, are ENOEXEC")
    func bad() {
        #expect(throws: LoadError.self) { try parse("#!\n") }
        #expect(throws: LoadError.self) { try parse("#!   \t \n") }
        #expect(throws: LoadError.self) { try parse("#!/" + String(repeating: "a", count: 300)) }
        // A long argument is cut, not refused (the name ended in time).
        let long = (try? parse("#!/bin/sh " + String(repeating: "x", count: 400))) ?? nil
        #expect(long?.interpreter == "/bin/sh")
        #expect(long?.argument?.count == 255 - 10)
    }
}

@Suite("Initial stack")
struct InitialStackTests {
    @Test("argc, argv, envp, auxv and strings are where Linux puts them, 16-byte aligned")
    func layout() throws {
        let size = 64 * 1024
        let mem = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { mem.deallocate() }
        let top = UInt64(UInt(bitPattern: mem)) + UInt64(size)
        let random: [UInt8] = Array(0..<16)
        let params = StackParameters(arguments: ["prog", "a b", ""], environment: ["X=1", "EMPTY="],
                                     executableName: "/path/prog", randomBytes: random,
                                     auxiliary: [(.pagesz, 4096), (.execfn, 0), (.platform, 0), (.random, 0), (.entry, 0x1234)])
        let sp = try InitialStack.build(params, top: top, limit: size)
        #expect(sp % 16 == 0)
        func word(_ a: UInt64) -> UInt64 { UnsafeRawPointer(bitPattern: UInt(a))!.load(as: UInt64.self) }
        func string(_ a: UInt64) -> String { String(cString: UnsafePointer<CChar>(bitPattern: UInt(a))!) }
        #expect(word(sp) == 3)
        #expect((0..<3).map { string(word(sp + 8 + UInt64($0) * 8)) } == ["prog", "a b", ""])
        #expect(word(sp + 32) == 0)
        #expect(string(word(sp + 40)) == "X=1")
        #expect(string(word(sp + 48)) == "EMPTY=")
        #expect(word(sp + 56) == 0)
        var aux: [UInt64: UInt64] = [:]
        var a = sp + 64
        while word(a) != 0 { aux[word(a)] = word(a + 8); a += 16 }
        #expect(aux[AuxType.pagesz.rawValue] == 4096)
        #expect(aux[AuxType.entry.rawValue] == 0x1234)
        #expect(string(aux[AuxType.execfn.rawValue]!) == "/path/prog")
        #expect(string(aux[AuxType.platform.rawValue]!) == "x86_64")
        let r = aux[AuxType.random.rawValue]!
        #expect((0..<16).map { UnsafeRawPointer(bitPattern: UInt(r + UInt64($0)))!.load(as: UInt8.self) } == random)
        // Strings are above the vectors; AT_EXECFN is the highest string, under a NULL word.
        #expect(aux[AuxType.execfn.rawValue]! + UInt64("/path/prog".utf8.count + 1) == top - 8)
        #expect(word(top - 8) == 0)
    }

    @Test("arguments larger than the limit are E2BIG")
    func tooLarge() {
        let params = StackParameters(arguments: [String(repeating: "x", count: 10_000)], environment: [],
                                     executableName: "p", randomBytes: [], auxiliary: [])
        #expect(throws: LoadError.argumentsTooLarge(bytes: 10_000 + 1 + 2 + 7 + 16 + 8 + 8 * 6 + 64, limit: 4096)) {
            _ = try InitialStack.build(params, top: 1 << 40, limit: 4096)
        }
    }
}

@Suite("Host calls")
struct HostCallTests {
    /// The errno of a failed call: the host's, read as the call returned (HostCall),
    /// whatever the Loader does next (closing the descriptor, releasing the C path).
    func ioErrno(_ body: () throws(LoadError) -> Void) -> (String, Int32)? {
        do throws(LoadError) {
            try body()
        } catch {
            if case let .io(_, call, errno) = error { return (call, errno.rawValue) }
        }
        return nil
    }

    @Test("open, fstat's file kind and the execute check give the call's own errno")
    func typedErrors() throws {
        let missing = "/nonexistent-\(getpid())/x"
        let r1 = ioErrno { () throws(LoadError) in _ = try HostFile(path: missing) }
        #expect(r1?.0 == "open" && r1?.1 == ENOENT)
        let r2 = ioErrno { () throws(LoadError) in _ = try HostFile(path: "/tmp") }
        #expect(r2?.0 == "open" && r2?.1 == EISDIR)
        let r3 = ioErrno { () throws(LoadError) in _ = try Loader.resolve(path: missing, arguments: ["x"]) }
        #expect(r3?.1 == ENOENT)
        let name = FileManager.default.temporaryDirectory.appendingPathComponent("noexec-\(getpid())").path
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: name))
        defer { try? FileManager.default.removeItem(atPath: name) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: name)
        // Root may execute a file only if some execute bit is set: EACCES for everyone here.
        let r4 = ioErrno { () throws(LoadError) in _ = try Loader.resolve(path: name, arguments: [name]) }
        #expect(r4?.1 == EACCES)
        guard case .failure(let e) = HostCall.run(path: missing, { open($0, O_RDONLY) }) else { Issue.record("opened"); return }
        #expect(e.rawValue == ENOENT)
    }
}
