// ELFError.swift: every way a file can fail to be a loadable ELF64 x86-64 program, each
// naming the problem (and where it is) the way a user should read it.

/// Why a file is not a loadable x86-64 ELF program.
public enum ELFError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(what: String, needed: UInt64, fileSize: UInt64)
    case badMagic
    case unsupportedClass(UInt8)
    case unsupportedEncoding(UInt8)
    case unsupportedVersion(UInt32)
    case unsupportedMachine(UInt16)
    case unsupportedType(UInt16)
    case badProgramHeaderSize(UInt16)
    case noProgramHeaders
    case tooManyProgramHeaders(UInt16)
    case programHeadersOutOfFile(offset: UInt64, size: UInt64, fileSize: UInt64)
    case segmentOutOfFile(index: Int, offset: UInt64, size: UInt64, fileSize: UInt64)
    case segmentFileSizeExceedsMemorySize(index: Int, fileSize: UInt64, memorySize: UInt64)
    case segmentMisaligned(index: Int, offset: UInt64, virtualAddress: UInt64)
    case segmentBadAlignment(index: Int, alignment: UInt64)
    case segmentTooLarge(index: Int, virtualAddress: UInt64, memorySize: UInt64)
    case segmentsOverlap(first: Int, second: Int)
    case segmentsNotSorted(index: Int)
    case noLoadableSegments
    case entryOutsideSegments(entry: UInt64)
    case multipleInterpreters
    case interpreterBadSize(UInt64)
    case interpreterNotTerminated
    case interpreterOutOfFile(offset: UInt64, size: UInt64, fileSize: UInt64)

    public var description: String {
        switch self {
        case let .truncated(what, needed, size):
            "truncated ELF file: the \(what) needs \(needed) bytes, the file has \(size)"
        case .badMagic: "not an ELF file (bad magic)"
        case .unsupportedClass(let c): "unsupported ELF class \(c) (only ELFCLASS64 is loadable)"
        case .unsupportedEncoding(let d): "unsupported ELF data encoding \(d) (only little-endian is loadable)"
        case .unsupportedVersion(let v): "unsupported ELF version \(v)"
        case .unsupportedMachine(let m): "ELF machine \(m) is not x86-64 (62)"
        case .unsupportedType(let t): "ELF type \(t) is not loadable (need ET_EXEC or ET_DYN)"
        case .badProgramHeaderSize(let s): "program header entry size \(s) is not 56"
        case .noProgramHeaders: "no program headers"
        case .tooManyProgramHeaders(let n): "\(n) program headers exceed the 64 KiB table limit"
        case let .programHeadersOutOfFile(off, size, fsize):
            "program header table [\(off), +\(size)) lies outside the \(fsize)-byte file"
        case let .segmentOutOfFile(i, off, size, fsize):
            "segment \(i): file range [\(off), +\(size)) lies outside the \(fsize)-byte file"
        case let .segmentFileSizeExceedsMemorySize(i, f, m):
            "segment \(i): p_filesz \(f) exceeds p_memsz \(m)"
        case let .segmentMisaligned(i, off, va):
            "segment \(i): p_offset \(hex(off)) and p_vaddr \(hex(va)) differ modulo the page size"
        case let .segmentBadAlignment(i, a): "segment \(i): p_align \(a) is not a power of two"
        case let .segmentTooLarge(i, va, m):
            "segment \(i): [\(hex(va)), +\(m)) does not fit in the user address space"
        case let .segmentsOverlap(a, b): "segments \(a) and \(b) overlap in memory"
        case .segmentsNotSorted(let i): "loadable segment \(i) is not in ascending p_vaddr order"
        case .noLoadableSegments: "no PT_LOAD segments"
        case .entryOutsideSegments(let e): "entry point \(hex(e)) is outside every loadable segment"
        case .multipleInterpreters: "more than one PT_INTERP"
        case .interpreterBadSize(let s): "PT_INTERP size \(s) is not 2...4096"
        case .interpreterNotTerminated: "PT_INTERP path is not NUL-terminated"
        case let .interpreterOutOfFile(off, size, fsize):
            "PT_INTERP [\(off), +\(size)) lies outside the \(fsize)-byte file"
        }
    }
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
