// Script.swift: `#!` interpreter lines, parsed by Linux's rules (fs/binfmt_script.c).

/// A parsed `#!` line.
public struct ScriptLine: Equatable, Sendable {
    /// The interpreter path.
    public var interpreter: String
    /// The single optional argument: everything after the interpreter, trimmed, unsplit.
    public var argument: String?

    /// Linux reads at most this many bytes of the first line (BINPRM_BUF_SIZE).
    public static let bufferSize = 256

    /// Parses the start of a file. Returns nil when it does not begin with `#!`.
    /// Follows fs/binfmt_script.c: the line is read from the first 256 bytes; without a
    /// newline there, the interpreter name must still end (space, tab or NUL) before the
    /// buffer does, and the argument is cut at 255 bytes.
    /// - Throws: `.badScript` when no interpreter is named or its name is cut.
    public static func parse(_ head: [UInt8], path: String) throws(LoadError) -> ScriptLine? {
        guard head.count >= 2, head[0] == UInt8(ascii: "#"), head[1] == UInt8(ascii: "!") else { return nil }
        var buf = Array(head.prefix(bufferSize))
        if buf.count < bufferSize { buf += [UInt8](repeating: 0, count: bufferSize - buf.count) }
        let bufEnd = bufferSize - 1
        func spacetab(_ c: UInt8) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }
        func terminator(_ c: UInt8) -> Bool { spacetab(c) || c == 0 }
        func nextNonSpacetab(_ from: Int, _ end: Int) -> Int? {
            var i = from
            while i < end { if !spacetab(buf[i]) { return i }; i += 1 }
            return nil
        }
        func nextTerminator(_ from: Int, _ end: Int) -> Int? {
            var i = from
            while i < end { if terminator(buf[i]) { return i }; i += 1 }
            return nil
        }
        var iEnd: Int
        if let nl = buf.firstIndex(of: UInt8(ascii: "\n")) {
            iEnd = nl
        } else {
            guard let first = nextNonSpacetab(2, bufEnd) else {
                throw .badScript(path: path, reason: "the #! line is only blanks")
            }
            guard nextTerminator(first, bufEnd) != nil else {
                throw .badScript(path: path, reason: "the interpreter name is longer than the \(bufferSize)-byte #! buffer")
            }
            iEnd = bufEnd
        }
        while iEnd > 2, spacetab(buf[iEnd - 1]) { iEnd -= 1 }
        guard let iName = nextNonSpacetab(2, iEnd), iName != iEnd else {
            throw .badScript(path: path, reason: "no interpreter named")
        }
        let iSep = nextTerminator(iName, iEnd)
        let interpBytes = buf[iName..<(iSep ?? iEnd)]
        var arg: String?
        if let iSep, buf[iSep] != 0, let iArg = nextNonSpacetab(iSep, iEnd) {
            var argBytes = buf[iArg..<iEnd]
            if let nul = argBytes.firstIndex(of: 0) { argBytes = argBytes[..<nul] }
            if !argBytes.isEmpty { arg = String(decoding: argBytes, as: UTF8.self) }
        }
        var interp = interpBytes
        if let nul = interp.firstIndex(of: 0) { interp = interp[..<nul] }
        guard !interp.isEmpty else { throw .badScript(path: path, reason: "no interpreter named") }
        return ScriptLine(interpreter: String(decoding: interp, as: UTF8.self), argument: arg)
    }
}
