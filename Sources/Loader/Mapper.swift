// Mapper.swift: maps a validated ELF file's PT_LOAD segments into this process: fixed
// programs where they ask (refusing a taken range), position-independent ones at a
// chosen or kernel-picked base, bss zeroed to the byte, final protections applied.
import CJunction
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A mapped ELF image.
public struct MappedImage: Equatable, Sendable {
    /// What was added to every p_vaddr (0 for ET_EXEC).
    public var loadBias: UInt64
    /// The entry point, relocated.
    public var entry: UInt64
    /// Where the program headers are in memory (AT_PHDR), if they are loaded.
    public var programHeaders: UInt64?
    public var programHeaderCount: Int
    /// The whole reserved range, page-aligned.
    public var range: Range<UInt64>
    /// First byte after the highest segment, page-rounded: where brk starts.
    public var breakStart: UInt64
}

public enum Mapper {
    static func protection(_ ph: ProgramHeader) -> Int32 {
        var p: Int32 = 0
        if ph.isReadable { p |= PROT_READ }
        if ph.isWritable { p |= PROT_WRITE }
        if ph.isExecutable { p |= PROT_EXEC }
        return p
    }

    /// Maps `elf` (whose bytes are `file`) into this process.
    /// - Parameters:
    ///   - elf: the parsed file.
    ///   - file: the open file its segments are mapped from.
    ///   - base: for a position-independent file, the address to place its lowest page
    ///     at; nil lets the kernel choose. Ignored for ET_EXEC.
    public static func map(_ elf: ELFFile, file: borrowing HostFile, base: UInt64? = nil) throws(LoadError) -> MappedImage {
        let page = Memory.pageSize
        let lo = Memory.roundDown(elf.addressRange.lowerBound)
        let hi = Memory.roundUp(elf.addressRange.upperBound)
        let span = hi - lo
        let maxAlign = max(page, elf.loadSegments.map(\.alignment).max() ?? page)

        // Reserve the whole span first, so segments land next to each other and a
        // fixed program cannot silently replace something already mapped.
        let bias: UInt64
        switch elf.kind {
        case .fixed:
            switch Memory.map(lo, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE) {
            case .success(let got) where got == lo:
                bias = 0
            case .success(let got):
                Memory.unmap(got, span)  // kernels before 4.17 ignore NOREPLACE
                throw .addressRangeTaken(path: file.path, range: lo..<hi)
            case .failure(let e) where e == .fileExists:
                throw .addressRangeTaken(path: file.path, range: lo..<hi)
            case .failure(let e):
                throw .mapping(path: file.path, call: "mmap(reserve)", errno: e)
            }
        case .positionIndependent:
            if let base {
                switch Memory.map(Memory.roundDown(base), span, PROT_NONE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE) {
                case .success(let got) where got == Memory.roundDown(base):
                    bias = got &- lo
                case .success(let got):
                    Memory.unmap(got, span)
                    throw .addressRangeTaken(path: file.path, range: base..<(base + span))
                case .failure(let e) where e == .fileExists:
                    throw .addressRangeTaken(path: file.path, range: base..<(base + span))
                case .failure(let e):
                    throw .mapping(path: file.path, call: "mmap(reserve)", errno: e)
                }
            } else {
                // Over-reserve to honour the largest p_align, then trim.
                let padded = span + (maxAlign > page ? maxAlign : 0)
                let got: UInt64
                switch Memory.map(0, padded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE) {
                case .success(let g): got = g
                case .failure(let e): throw .mapping(path: file.path, call: "mmap(reserve)", errno: e)
                }
                let start = (got + maxAlign - 1) & ~(maxAlign - 1)
                if start > got { Memory.unmap(got, start - got) }
                let end = start + span
                if got + padded > end { Memory.unmap(end, got + padded - end) }
                bias = start &- lo
            }
        }
        let reserved = (lo &+ bias)..<(hi &+ bias)

        do {
            for seg in elf.loadSegments {
                try mapSegment(seg, bias: bias, file: file)
            }
        } catch {
            Memory.unmap(reserved.lowerBound, span)
            throw error
        }
        return MappedImage(loadBias: bias, entry: elf.entry &+ bias,
                           programHeaders: elf.programHeaderAddress.map { $0 &+ bias },
                           programHeaderCount: elf.programHeaders.count, range: reserved,
                           breakStart: hi &+ bias)
    }

    private static func mapSegment(_ seg: ProgramHeader, bias: UInt64, file: borrowing HostFile) throws(LoadError) {
        let start = seg.virtualAddress &+ bias
        let pageStart = Memory.roundDown(start)
        let fileEnd = start + seg.fileSize
        let memEnd = start + seg.memorySize
        let prot = protection(seg)
        let writableProt = prot | PROT_WRITE
        if seg.fileSize > 0 {
            let len = Memory.roundUp(fileEnd) - pageStart
            let off = Memory.roundDown(seg.offset)
            // Map writable while bss is zeroed; the final protection comes after.
            if case .failure(let e) = Memory.map(pageStart, len, seg.memorySize > seg.fileSize ? writableProt : prot,
                                                 MAP_PRIVATE | MAP_FIXED, file.fd, off) {
                throw .mapping(path: file.path, call: "mmap(segment)", errno: e)
            }
        }
        // bss: the rest of the last file page, then anonymous zero pages.
        if seg.memorySize > seg.fileSize {
            let fileMappedEnd = seg.fileSize > 0 ? Memory.roundUp(fileEnd) : pageStart
            if seg.fileSize > 0 { Memory.zero(fileEnd, fileMappedEnd - fileEnd) }
            let anonEnd = Memory.roundUp(memEnd)
            if anonEnd > fileMappedEnd {
                if case .failure(let e) = Memory.map(fileMappedEnd, anonEnd - fileMappedEnd, prot,
                                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) {
                    throw .mapping(path: file.path, call: "mmap(bss)", errno: e)
                }
            }
            if seg.fileSize > 0, prot != writableProt {
                if case .failure(let e) = Memory.protect(pageStart, fileMappedEnd - pageStart, prot) {
                    throw .mapping(path: file.path, call: "mprotect", errno: e)
                }
            }
        }
    }
}
