// PathBytes.swift: Linux file names (any bytes but NUL) kept losslessly in Swift Strings.
//
// Linux names are bytes, not text: a name that is not valid UTF-8 (b"\xff", Latin-1
// names) must come back from getdents and readlink and reach the host unchanged. The
// VFS keeps names as Strings, so each byte of an invalid sequence becomes the scalar
// U+10FE00 + byte (plane 16, private use), and so does each byte of a genuine scalar in
// U+10FE00...U+10FEFF; encoding turns every such scalar back into its byte. Valid UTF-8
// without those scalars (nearly every name) is the String's own UTF-8, unchanged.

extension String {
    /// The String that stands for the file name or path `bytes` (no NUL).
    public init(pathBytes bytes: UnsafeBufferPointer<UInt8>) {
        if !bytes.contains(where: { $0 >= 0x80 }) {
            self = String(decoding: bytes, as: UTF8.self)
            return
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var i = 0
        let n = bytes.count
        func escape(_ b: UInt8) {
            out.append(0xF4); out.append(0x8F); out.append(0xB8 | b >> 6); out.append(0x80 | b & 0x3F)
        }
        func continuation(_ k: Int) -> Bool { k < n && bytes[k] & 0xC0 == 0x80 }
        while i < n {
            let b = bytes[i]
            var length = 0
            switch b {
            case 0..<0x80: length = 1
            case 0xC2...0xDF: length = continuation(i + 1) ? 2 : 0
            case 0xE0...0xEF:
                if i + 1 < n {
                    let c = bytes[i + 1]
                    let ok = b == 0xE0 ? (0xA0...0xBF).contains(c) : b == 0xED ? (0x80...0x9F).contains(c) : c & 0xC0 == 0x80
                    length = ok && continuation(i + 2) ? 3 : 0
                }
            case 0xF0...0xF4:
                if i + 1 < n {
                    let c = bytes[i + 1]
                    let ok = b == 0xF0 ? (0x90...0xBF).contains(c) : b == 0xF4 ? (0x80...0x8F).contains(c) : c & 0xC0 == 0x80
                    length = ok && continuation(i + 2) && continuation(i + 3) ? 4 : 0
                }
            default: length = 0
            }
            if length == 0 {
                escape(b)
                i += 1
            } else if length == 4 && b == 0xF4 && bytes[i + 1] == 0x8F && (0xB8...0xBB).contains(bytes[i + 2]) {
                for k in i..<i + 4 { escape(bytes[k]) }  // a genuine escape scalar: its bytes escaped
                i += 4
            } else {
                for k in i..<i + length { out.append(bytes[k]) }
                i += length
            }
        }
        self = String(decoding: out, as: UTF8.self)
    }

    /// The String that stands for `bytes`.
    public init(pathBytes bytes: [UInt8]) {
        self = bytes.withUnsafeBufferPointer { String(pathBytes: $0) }
    }

    /// Whether the String holds an escaped byte (so its UTF-8 is not its bytes).
    private var hasEscapes: Bool { utf8.contains(0xF4) && unicodeScalars.contains { (0x10FE00...0x10FEFF).contains($0.value) } }

    /// The bytes of the name or path the String stands for.
    public var pathBytes: [UInt8] {
        guard hasEscapes else { return Array(utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        for s in unicodeScalars {
            if (0x10FE00...0x10FEFF).contains(s.value) {
                out.append(UInt8(s.value & 0xFF))
            } else {
                out.append(contentsOf: String(s).utf8)
            }
        }
        return out
    }

    /// The length in bytes of the name or path (what Linux's limits count).
    public var pathByteCount: Int { hasEscapes ? pathBytes.count : utf8.count }

    /// Calls `body` with the NUL-terminated bytes of the name or path, for host calls.
    public func withPathCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        guard hasEscapes else { return try withCString(body) }
        let bytes = pathBytes.map { CChar(bitPattern: $0) } + [0]
        return try bytes.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
