// StderrLog.swift: junction's log handler: each libOS diagnostic at or above --log-level
// is written to stderr as one bare line (the text the libraries give, no timestamp or label).
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes a record's message and a newline to fd 2 in one write(2): lines from several
/// kthreads never interleave, and nothing is buffered (the program may exit at any call).
struct StderrLineHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = "\(event.message)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }
}

extension Logger.Level {
    /// The names --log-level takes, lowest first.
    static var names: String { allCases.map(\.rawValue).joined(separator: "|") }
}
