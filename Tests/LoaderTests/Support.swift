// Support.swift: fixtures for the Loader tests, over the shared TestSupport target.
import Foundation
import TestSupport

enum Fixtures {
    static var scratch: URL { testScratchDirectory }
    static var elfRun: String { siblingExecutable("elf-run") }

    typealias Output = ProcessOutput

    static func compile(_ name: String, flags: [String], as output: String) throws -> String {
        try compileTestProgram(name, flags: flags, as: output)
    }

    static func run(_ path: String, _ args: [String], environment: [String: String]? = nil,
                    stdin: String? = nil) throws -> Output {
        try runProcess(path, args, environment: environment, stdin: stdin)
    }

    static func write(_ name: String, _ contents: String, executable: Bool = true) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        if executable { chmod(path, 0o755) }
        return path
    }

    static func writeBytes(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }
}
