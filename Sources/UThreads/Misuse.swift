// Misuse.swift: how UThreads reports a program's misuse of its API: a message that says
// what was wrong, printed in every build configuration, then the process stops.

/// Stops the process with `message` (fatalError prints it in -O builds too, unlike
/// precondition).
@inline(never) @usableFromInline
func misuse(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}

/// Checks an API contract; on failure stops the process with `message`.
@inline(__always) @usableFromInline
func require(_ condition: Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition { misuse(message(), file: file, line: line) }
}
