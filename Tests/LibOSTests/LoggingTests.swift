// LoggingTests.swift: the libraries' diagnostics go through swift-log: a LogHandler an
// embedding program supplies receives them; junction's --log-level filters its stderr lines.
import CJunction
import FileSystem
import Foundation
import Logging
@testable import SyscallEmu
import Synchronization
import TestSupport
import Testing

/// Keeps every record it is given (the handler an embedding program would install).
struct CapturingHandler: LogHandler {
    let records: Records
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    final class Records: Sendable {
        let lines = Mutex<[(Logger.Level, String, String)]>([])
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.lines.withLock { $0.append((event.level, event.source, "\(event.message)")) }
    }
}

@Suite("diagnostics through swift-log", .timeLimit(.minutes(2)))
struct LoggingTests {
    @Test("an embedding program's LogHandler receives the unsupported-call warning, once per number")
    func handlerReceivesUnsupportedCall() throws {
        let records = CapturingHandler.Records()
        let logger = Logger(label: "embedder") { _ in CapturingHandler(records: records) }
        let fs = try FileSystemContext(vfs: VFS(root: MemFS()))
        let dispatcher = Dispatcher(process: try LinuxProcess(fs: fs, programBreakStart: 0, executablePath: "/x"), logger: logger)
        var raw = cj_syscall_frame()
        raw.nr = 500   // no x86-64 call has this number
        let result = withUnsafeMutablePointer(to: &raw) { p in
            (0..<2).map { _ in dispatcher.dispatch(SyscallFrame(p)) }
        }
        #expect(result == [-38, -38], "ENOSYS both times")
        let lines = records.lines.withLock { $0 }
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.0 == .warning)
        #expect(lines.first?.2 == "junction: unsupported system call 500 (syscall_500): returning ENOSYS", "\(lines)")
        #expect(lines.first?.1 == "SyscallEmu", "the source is the module that logged")
    }

    @Test("an unsupported call is logged with the kernel's name for it, new and obsolete calls too",
          arguments: [SyscallNumber.bind, .lookup_dcookie, .tuxcall, .uretprobe, .file_setattr])
    func unsupportedCallNamed(_ call: SyscallNumber) throws {
        let records = CapturingHandler.Records()
        let logger = Logger(label: "embedder") { _ in CapturingHandler(records: records) }
        let fs = try FileSystemContext(vfs: VFS(root: MemFS()))
        let dispatcher = Dispatcher(process: try LinuxProcess(fs: fs, programBreakStart: 0, executablePath: "/x"), logger: logger)
        // A handler the table has would be run instead: unregister it for the test.
        dispatcher.unregister(call)
        var raw = cj_syscall_frame()
        raw.nr = UInt64(call.rawValue)
        let result = withUnsafeMutablePointer(to: &raw) { dispatcher.dispatch(SyscallFrame($0)) }
        #expect(result == -38, "ENOSYS")
        let lines = records.lines.withLock { $0 }
        #expect(lines.map(\.2) == ["junction: unsupported system call \(call.rawValue) (\(call.name)): returning ENOSYS"], "\(lines)")
    }

    @Test("--log-level error drops the warning-level unsupported-call line; the default keeps it")
    func logLevelFilters() throws {
        let prog = try Junction.compile("enosys", [], as: "enosys-loglevel")
        let native = try Junction.run(prog, [])
        let quiet = try Junction.run(Junction.binary, ["--log-level", "error", "--", prog])
        #expect(quiet.stdout == native.stdout && quiet.status == native.status, "\(quiet)")
        #expect(!quiet.stderr.contains("unsupported system call"), "\(quiet.stderr)")
        let normal = try Junction.run(Junction.binary, ["--log-level", "warning", "--", prog])
        #expect(normal.stderr.contains("junction: unsupported system call 500 (syscall_500): returning ENOSYS\n"), "\(normal.stderr)")
    }

    @Test("an unknown --log-level exits 2 naming the levels")
    func badLevel() throws {
        let r = try runProcess(Junction.binary, ["--log-level", "loud", "--", "/bin/true"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("trace|debug|info|notice|warning|error|critical"), "\(r)")
    }
}
