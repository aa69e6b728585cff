// ELFFile.swift: the ELF64 x86-64 parser: reads the file header and program headers
// through a byte source, validates everything the loader will rely on, and yields a
// value that can be planned and mapped without further checks.

/// Where an ELF file's bytes come from: a file descriptor or memory.
public protocol ELFByteSource: ~Copyable {
    /// Size of the whole file in bytes.
    var size: UInt64 { get }
    /// Exactly `count` bytes at `offset`; the caller has checked the range lies inside.
    func read(offset: UInt64, count: Int) throws(LoadError) -> [UInt8]
}

extension Array: ELFByteSource where Element == UInt8 {
    public var size: UInt64 { UInt64(count) }
    public func read(offset: UInt64, count: Int) throws(LoadError) -> [UInt8] {
        Array(self[Int(offset)..<Int(offset) + count])
    }
}

/// ELF constants the loader uses (elf(5)).
public enum ELFConstants {
    public static let headerSize = 64
    public static let programHeaderSize = 56
    public static let classELF64: UInt8 = 2
    public static let dataLSB: UInt8 = 1
    public static let machineX86_64: UInt16 = 62
    public static let typeExec: UInt16 = 2
    public static let typeDyn: UInt16 = 3
    public static let ptLoad: UInt32 = 1
    public static let ptInterp: UInt32 = 3
    public static let ptPhdr: UInt32 = 6
    public static let ptGNUStack: UInt32 = 0x6474_e551
    public static let pfX: UInt32 = 1
    public static let pfW: UInt32 = 2
    public static let pfR: UInt32 = 4
    /// Top of the x86-64 user address space with 4-level paging (what Linux gives a
    /// process unless it asks for more).
    public static let userAddressLimit: UInt64 = 1 << 47
    /// Linux's limit on the size of the program header table.
    public static let maxProgramHeaderTable = 65536
    /// PATH_MAX: the longest interpreter path.
    public static let maxInterpreterPath: UInt64 = 4096
}

/// One program header.
public struct ProgramHeader: Equatable, Sendable {
    public var type: UInt32
    public var flags: UInt32
    public var offset: UInt64
    public var virtualAddress: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
    public var alignment: UInt64

    public var isReadable: Bool { flags & ELFConstants.pfR != 0 }
    public var isWritable: Bool { flags & ELFConstants.pfW != 0 }
    public var isExecutable: Bool { flags & ELFConstants.pfX != 0 }
}

/// A validated ELF64 x86-64 executable or shared object (ET_EXEC or ET_DYN).
public struct ELFFile: Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// ET_EXEC: loaded at the addresses it names.
        case fixed
        /// ET_DYN: position independent, loaded at a chosen base.
        case positionIndependent
    }

    public var kind: Kind
    public var entry: UInt64
    public var programHeaderOffset: UInt64
    public var programHeaders: [ProgramHeader]
    /// PT_LOAD headers in ascending address order (validated).
    public var loadSegments: [ProgramHeader]
    /// The PT_INTERP path, without its NUL.
    public var interpreter: String?
    /// PT_GNU_STACK's flags; nil when absent (Linux then makes the stack executable).
    public var stackFlags: UInt32?
    public var fileSize: UInt64

    /// Whether the stack must be executable (no PT_GNU_STACK, or PF_X set on it).
    public var wantsExecutableStack: Bool { stackFlags.map { $0 & ELFConstants.pfX != 0 } ?? true }

    /// The lowest and the end of the highest loaded address, before page rounding.
    public var addressRange: Range<UInt64> {
        let lo = loadSegments.first!.virtualAddress
        let hi = loadSegments.map { $0.virtualAddress + $0.memorySize }.max()!
        return lo..<hi
    }

    /// Parses and validates an ELF file.
    /// - Parameters:
    ///   - source: the file's bytes.
    ///   - pageSize: the page size segments must be congruent to (4096 on x86-64).
    public static func parse<Source: ELFByteSource & ~Copyable>(_ source: borrowing Source, pageSize: UInt64 = 4096) throws(LoadError) -> ELFFile {
        let fileSize = source.size
        func fail(_ e: ELFError) -> LoadError { .elf(e) }
        guard fileSize >= UInt64(ELFConstants.headerSize) else {
            if fileSize >= 4, try source.read(offset: 0, count: 4) != [0x7F, 0x45, 0x4C, 0x46] { throw fail(.badMagic) }
            throw fail(.truncated(what: "ELF header", needed: UInt64(ELFConstants.headerSize), fileSize: fileSize))
        }
        let h = ByteReader(try source.read(offset: 0, count: ELFConstants.headerSize))
        guard h.u8(0) == 0x7F, h.u8(1) == 0x45, h.u8(2) == 0x4C, h.u8(3) == 0x46 else { throw fail(.badMagic) }
        guard h.u8(4) == ELFConstants.classELF64 else { throw fail(.unsupportedClass(h.u8(4))) }
        guard h.u8(5) == ELFConstants.dataLSB else { throw fail(.unsupportedEncoding(h.u8(5))) }
        guard h.u8(6) == 1 else { throw fail(.unsupportedVersion(UInt32(h.u8(6)))) }
        let type = h.u16(16), machine = h.u16(18), version = h.u32(20)
        guard machine == ELFConstants.machineX86_64 else { throw fail(.unsupportedMachine(machine)) }
        guard type == ELFConstants.typeExec || type == ELFConstants.typeDyn else { throw fail(.unsupportedType(type)) }
        guard version == 1 else { throw fail(.unsupportedVersion(version)) }
        let entry = h.u64(24), phoff = h.u64(32)
        let phentsize = h.u16(54), phnum = h.u16(56)
        guard phentsize == UInt16(ELFConstants.programHeaderSize) else { throw fail(.badProgramHeaderSize(phentsize)) }
        guard phnum > 0 else { throw fail(.noProgramHeaders) }
        let tableSize = UInt64(phnum) * UInt64(ELFConstants.programHeaderSize)
        guard tableSize <= UInt64(ELFConstants.maxProgramHeaderTable) else { throw fail(.tooManyProgramHeaders(phnum)) }
        let (tableEnd, overflow) = phoff.addingReportingOverflow(tableSize)
        guard !overflow, tableEnd <= fileSize else {
            throw fail(.programHeadersOutOfFile(offset: phoff, size: tableSize, fileSize: fileSize))
        }
        let table = ByteReader(try source.read(offset: phoff, count: Int(tableSize)))
        var headers: [ProgramHeader] = []
        headers.reserveCapacity(Int(phnum))
        for i in 0..<Int(phnum) {
            let b = i * ELFConstants.programHeaderSize
            headers.append(ProgramHeader(type: table.u32(b), flags: table.u32(b + 4), offset: table.u64(b + 8),
                                         virtualAddress: table.u64(b + 16), fileSize: table.u64(b + 32),
                                         memorySize: table.u64(b + 40), alignment: table.u64(b + 48)))
        }

        var loads: [ProgramHeader] = []
        var loadIndex: [Int] = []
        var interpreter: String?
        var stackFlags: UInt32?
        for (i, ph) in headers.enumerated() {
            switch ph.type {
            case ELFConstants.ptLoad:
                let (fileEnd, o1) = ph.offset.addingReportingOverflow(ph.fileSize)
                guard !o1, fileEnd <= fileSize else {
                    throw fail(.segmentOutOfFile(index: i, offset: ph.offset, size: ph.fileSize, fileSize: fileSize))
                }
                guard ph.fileSize <= ph.memorySize else {
                    throw fail(.segmentFileSizeExceedsMemorySize(index: i, fileSize: ph.fileSize, memorySize: ph.memorySize))
                }
                guard ph.alignment <= 1 || ph.alignment & (ph.alignment - 1) == 0 else {
                    throw fail(.segmentBadAlignment(index: i, alignment: ph.alignment))
                }
                guard ph.offset % pageSize == ph.virtualAddress % pageSize else {
                    throw fail(.segmentMisaligned(index: i, offset: ph.offset, virtualAddress: ph.virtualAddress))
                }
                let (memEnd, o2) = ph.virtualAddress.addingReportingOverflow(ph.memorySize)
                guard !o2, memEnd <= ELFConstants.userAddressLimit else {
                    throw fail(.segmentTooLarge(index: i, virtualAddress: ph.virtualAddress, memorySize: ph.memorySize))
                }
                if let prev = loads.last {
                    guard ph.virtualAddress >= prev.virtualAddress else { throw fail(.segmentsNotSorted(index: i)) }
                    guard ph.virtualAddress >= prev.virtualAddress + prev.memorySize else {
                        throw fail(.segmentsOverlap(first: loadIndex.last!, second: i))
                    }
                }
                loads.append(ph)
                loadIndex.append(i)
            case ELFConstants.ptInterp:
                guard interpreter == nil else { throw fail(.multipleInterpreters) }
                guard ph.fileSize >= 2, ph.fileSize <= ELFConstants.maxInterpreterPath else {
                    throw fail(.interpreterBadSize(ph.fileSize))
                }
                let (end, o) = ph.offset.addingReportingOverflow(ph.fileSize)
                guard !o, end <= fileSize else {
                    throw fail(.interpreterOutOfFile(offset: ph.offset, size: ph.fileSize, fileSize: fileSize))
                }
                let bytes = try source.read(offset: ph.offset, count: Int(ph.fileSize))
                guard bytes.last == 0 else { throw fail(.interpreterNotTerminated) }
                // Linux opens the path as a C string: NUL padding after it is allowed.
                let path = bytes.prefix(while: { $0 != 0 })
                interpreter = String(decoding: path, as: UTF8.self)
            case ELFConstants.ptGNUStack:
                stackFlags = ph.flags
            default:
                break
            }
        }
        guard !loads.isEmpty else { throw fail(.noLoadableSegments) }
        guard loads.contains(where: { entry >= $0.virtualAddress && entry < $0.virtualAddress + $0.memorySize }) else {
            throw fail(.entryOutsideSegments(entry: entry))
        }
        return ELFFile(kind: type == ELFConstants.typeExec ? .fixed : .positionIndependent, entry: entry,
                       programHeaderOffset: phoff, programHeaders: headers, loadSegments: loads,
                       interpreter: interpreter, stackFlags: stackFlags, fileSize: fileSize)
    }

    /// The in-memory address of the program header table before relocation: PT_PHDR's
    /// address, or the address where the loaded file offset e_phoff lands.
    public var programHeaderAddress: UInt64? {
        if let phdr = programHeaders.first(where: { $0.type == ELFConstants.ptPhdr }) { return phdr.virtualAddress }
        for s in loadSegments where programHeaderOffset >= s.offset && programHeaderOffset < s.offset + s.fileSize {
            return s.virtualAddress + (programHeaderOffset - s.offset)
        }
        return nil
    }
}

/// Little-endian reads from a buffer whose length the caller has checked.
struct ByteReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func u8(_ o: Int) -> UInt8 { bytes[o] }
    func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
}
