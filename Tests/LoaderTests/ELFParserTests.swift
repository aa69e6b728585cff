// ELFParserTests.swift: the ELF parser against real binaries on this machine, crafted
// bad files (one per error), and thousands of seeded mutations of real headers.
import Foundation
import Testing
@testable import Loader

@Suite("ELF parser")
struct ELFParserTests {
    static let busybox = "/bin/busybox"
    static let dynamicBinary = "/bin/ls"
    static let interpreterPath = "/lib64/ld-linux-x86-64.so.2"

    func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    @Test("a static busybox is a fixed-address program with no interpreter")
    func staticBusybox() throws {
        let elf = try ELFFile.parse(HostFile(path: Self.busybox))
        #expect(elf.kind == .fixed)
        #expect(elf.interpreter == nil)
        #expect(!elf.loadSegments.isEmpty)
        #expect(elf.addressRange.lowerBound >= 0x400000 - 0x1000)
    }

    @Test("a dynamic binary names the system's ld.so as its interpreter")
    func dynamicBinary() throws {
        let elf = try ELFFile.parse(HostFile(path: Self.dynamicBinary))
        #expect(elf.kind == .positionIndependent)
        #expect(elf.interpreter == Self.interpreterPath)
        #expect(elf.programHeaderAddress != nil)
        #expect(!elf.wantsExecutableStack)
    }

    @Test("ld.so itself is position independent, without an interpreter")
    func interpreterItself() throws {
        let elf = try ELFFile.parse(HostFile(path: Self.interpreterPath))
        #expect(elf.kind == .positionIndependent)
        #expect(elf.interpreter == nil)
    }

    // MARK: crafted bad files

    /// A minimal valid ELF: header, one PT_LOAD covering the file, entry inside it.
    static func minimal() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x1000)
        b.replaceSubrange(0..<4, with: [0x7F, 0x45, 0x4C, 0x46])
        b[4] = 2; b[5] = 1; b[6] = 1
        put16(&b, 16, 2); put16(&b, 18, 62); put32(&b, 20, 1)
        put64(&b, 24, 0x400100)  // entry
        put64(&b, 32, 64)        // phoff
        put16(&b, 52, 64); put16(&b, 54, 56); put16(&b, 56, 1)
        putPhdr(&b, 0, type: 1, flags: 5, offset: 0, vaddr: 0x400000, filesz: 0x1000, memsz: 0x1000, align: 0x1000)
        return b
    }

    static func put16(_ b: inout [UInt8], _ o: Int, _ v: UInt16) { for i in 0..<2 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func put64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func putPhdr(_ b: inout [UInt8], _ i: Int, type: UInt32, flags: UInt32, offset: UInt64, vaddr: UInt64,
                        filesz: UInt64, memsz: UInt64, align: UInt64) {
        let o = 64 + i * 56
        put32(&b, o, type); put32(&b, o + 4, flags); put64(&b, o + 8, offset); put64(&b, o + 16, vaddr)
        put64(&b, o + 24, vaddr); put64(&b, o + 32, filesz); put64(&b, o + 40, memsz); put64(&b, o + 48, align)
    }

    @Test("the minimal crafted file parses")
    func minimalParses() throws {
        let elf = try ELFFile.parse(Self.minimal())
        #expect(elf.entry == 0x400100)
    }

    static let badCases: [(String, @Sendable ([UInt8]) -> [UInt8], ELFError)] = [
        ("empty file", { _ in [] }, .truncated(what: "ELF header", needed: 64, fileSize: 0)),
        ("text file", { _ in Array("#include <stdio.h>\n".utf8) }, .badMagic),
        ("bad magic", { b in var b = b; b[1] = 0x46; return b }, .badMagic),
        ("32-bit class", { b in var b = b; b[4] = 1; return b }, .unsupportedClass(1)),
        ("big-endian", { b in var b = b; b[5] = 2; return b }, .unsupportedEncoding(2)),
        ("ARM machine", { b in var b = b; put16(&b, 18, 183); return b }, .unsupportedMachine(183)),
        ("relocatable object", { b in var b = b; put16(&b, 16, 1); return b }, .unsupportedType(1)),
        ("odd phentsize", { b in var b = b; put16(&b, 54, 32); return b }, .badProgramHeaderSize(32)),
        ("no program headers", { b in var b = b; put16(&b, 56, 0); return b }, .noProgramHeaders),
        ("program headers past EOF", { b in var b = b; put64(&b, 32, 0xFF0); return b },
         .programHeadersOutOfFile(offset: 0xFF0, size: 56, fileSize: 0x1000)),
        ("huge phoff overflows", { b in var b = b; put64(&b, 32, .max - 8); return b },
         .programHeadersOutOfFile(offset: .max - 8, size: 56, fileSize: 0x1000)),
        ("too many headers", { b in var b = b; put16(&b, 56, 2000); return b }, .tooManyProgramHeaders(2000)),
        ("segment past EOF", { b in var b = b; put64(&b, 64 + 32, 0x2000); put64(&b, 64 + 40, 0x2000); return b },
         .segmentOutOfFile(index: 0, offset: 0, size: 0x2000, fileSize: 0x1000)),
        ("filesz > memsz", { b in var b = b; put64(&b, 64 + 40, 0x800); return b },
         .segmentFileSizeExceedsMemorySize(index: 0, fileSize: 0x1000, memorySize: 0x800)),
        ("misaligned segment", { b in var b = b; put64(&b, 64 + 16, 0x400010); return b },
         .segmentMisaligned(index: 0, offset: 0, virtualAddress: 0x400010)),
        ("bad p_align", { b in var b = b; put64(&b, 64 + 48, 0x1001); return b }, .segmentBadAlignment(index: 0, alignment: 0x1001)),
        ("segment beyond user space", { b in var b = b; put64(&b, 64 + 40, 1 << 50); return b },
         .segmentTooLarge(index: 0, virtualAddress: 0x400000, memorySize: 1 << 50)),
        ("entry outside", { b in var b = b; put64(&b, 24, 0x900000); return b }, .entryOutsideSegments(entry: 0x900000)),
        ("no PT_LOAD", { b in var b = b; put32(&b, 64, 4); return b }, .noLoadableSegments),
    ]

    @Test("each malformed header gets the typed error that names it", arguments: 0..<badCases.count)
    func malformed(_ i: Int) {
        let (name, mutate, expected) = Self.badCases[i]
        #expect(throws: LoadError.elf(expected), "\(name)") { try ELFFile.parse(mutate(Self.minimal())) }
    }

    @Test("overlapping, unsorted segments and interpreter problems")
    func multiSegment() {
        func two(_ second: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = Self.minimal()
            Self.put16(&b, 56, 2)
            Self.putPhdr(&b, 1, type: 1, flags: 6, offset: 0, vaddr: 0x600000, filesz: 0x100, memsz: 0x2000, align: 0x1000)
            second(&b)
            return b
        }
        #expect(throws: LoadError.elf(.segmentsOverlap(first: 0, second: 1))) {
            try ELFFile.parse(two { Self.put64(&$0, 64 + 56 + 16, 0x400800); Self.put64(&$0, 64 + 56 + 8, 0x800) })
        }
        #expect(throws: LoadError.elf(.segmentsNotSorted(index: 1))) {
            try ELFFile.parse(two { Self.put64(&$0, 64 + 56 + 16, 0x200000) })
        }
        let interp: (inout [UInt8], UInt64, [UInt8]) -> Void = { b, size, path in
            Self.putPhdr(&b, 1, type: 3, flags: 4, offset: 0x800, vaddr: 0x400800, filesz: size, memsz: size, align: 1)
            b.replaceSubrange(0x800..<(0x800 + path.count), with: path)
        }
        #expect(throws: LoadError.elf(.interpreterNotTerminated)) {
            try ELFFile.parse(two { interp(&$0, 5, Array("/ld.s".utf8)) })
        }
        #expect(throws: LoadError.elf(.interpreterBadSize(0))) { try ELFFile.parse(two { interp(&$0, 0, []) }) }
        let ok = try? ELFFile.parse(two { interp(&$0, 6, Array("/ld.so".utf8) + [0]) })
        #expect(ok == nil)  // 6 bytes "/ld.so" has no NUL inside the 6
        let good = try? ELFFile.parse(two { interp(&$0, 7, Array("/ld.so".utf8) + [0]) })
        #expect(good?.interpreter == "/ld.so")
        // NUL padding after the path, as Linux accepts it (the path is a C string).
        let padded = try? ELFFile.parse(two { interp(&$0, 10, Array("/ld.so".utf8) + [0, 0, 0, 0]) })
        #expect(padded?.interpreter == "/ld.so")
        var three = two { interp(&$0, 7, Array("/ld.so".utf8) + [0]) }
        Self.put16(&three, 56, 3)
        Self.putPhdr(&three, 2, type: 3, flags: 4, offset: 0x800, vaddr: 0x400800, filesz: 7, memsz: 7, align: 1)
        #expect(throws: LoadError.elf(.multipleInterpreters)) { try ELFFile.parse(three) }
    }

    @Test("thousands of seeded mutations of real headers never crash the parser",
          arguments: ["/bin/busybox", "/bin/ls", "/lib64/ld-linux-x86-64.so.2"])
    func fuzz(_ path: String) throws {
        let original = try bytes(path)
        let phoff = Int(original[32]) | Int(original[33]) << 8
        let phnum = Int(original[56]) | Int(original[57]) << 8
        let headerEnd = min(original.count, phoff + phnum * 56 + 64)
        var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(path.utf8.count))
        var accepted = 0, rejected = 0
        for _ in 0..<3_000 {
            var b = original
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits {
                let at = Int(rng.next() % UInt64(headerEnd))
                switch rng.next() % 3 {
                case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b[at] ^= UInt8(1 << (rng.next() % 8))
                default:  // a whole 8-byte field to an extreme
                    let v: UInt64 = [0, .max, 1 << 63, 0x1000, UInt64(b.count)][Int(rng.next() % 5)]
                    for i in 0..<8 where at + i < b.count { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
                }
            }
            if rng.next() % 10 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(headerEnd + 1)))) }
            do {
                _ = try ELFFile.parse(b)
                accepted += 1
            } catch {
                rejected += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(accepted + rejected == 3_000)
        #expect(rejected > 0)
    }
}

/// A small deterministic generator (SplitMix64) for reproducible mutations.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
