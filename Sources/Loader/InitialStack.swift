// InitialStack.swift: the stack a program starts on, laid out byte for byte as Linux's
// create_elf_tables builds it: strings at the top, then AT_PLATFORM and AT_RANDOM bytes,
// then the 16-byte aligned argc, argv, envp and auxv.
import CJunction

/// Auxiliary vector entry types (include/uapi/linux/auxvec.h).
public enum AuxType: UInt64, Sendable, CaseIterable {
    case null = 0, phdr = 3, phent = 4, phnum = 5, pagesz = 6, base = 7, flags = 8, entry = 9
    case uid = 11, euid = 12, gid = 13, egid = 14, platform = 15, hwcap = 16, clktck = 17
    case secure = 23, random = 25, hwcap2 = 26, rseqFeatureSize = 27, rseqAlign = 28
    case execfn = 31, sysinfoEHDR = 33, minsigstksz = 51
}

/// What the initial stack carries besides the strings.
public struct StackParameters: Sendable {
    /// argv and envp as the kernel copies them: bytes (no NUL), not necessarily UTF-8.
    public var arguments: [[UInt8]]
    public var environment: [[UInt8]]
    /// AT_EXECFN: the path the program was executed by.
    public var executableName: String
    public var platform: String = "x86_64"
    /// The 16 bytes AT_RANDOM points to.
    public var randomBytes: [UInt8]
    /// Values for the auxiliary vector, in Linux's order; AT_EXECFN, AT_PLATFORM and
    /// AT_RANDOM are filled in with the addresses of what this builder writes.
    public var auxiliary: [(AuxType, UInt64)]

    public init(arguments: [[UInt8]], environment: [[UInt8]], executableName: String, randomBytes: [UInt8],
                auxiliary: [(AuxType, UInt64)]) {
        self.arguments = arguments
        self.environment = environment
        self.executableName = executableName
        self.randomBytes = randomBytes
        self.auxiliary = auxiliary
    }

    /// The same with argv and envp given as text (their UTF-8).
    public init(arguments: [String], environment: [String], executableName: String, randomBytes: [UInt8],
                auxiliary: [(AuxType, UInt64)]) {
        self.init(arguments: arguments.map { Array($0.utf8) }, environment: environment.map { Array($0.utf8) },
                  executableName: executableName, randomBytes: randomBytes, auxiliary: auxiliary)
    }
}

public enum InitialStack {
    /// Writes the initial stack just below `top` and returns the stack pointer (the
    /// address of argc), 16-byte aligned.
    /// - Parameters:
    ///   - p: the arguments, environment and auxiliary vector to place.
    ///   - top: the end (exclusive) of writable memory, in this address space.
    ///   - limit: how many bytes below `top` may be used.
    public static func build(_ p: StackParameters, top: UInt64, limit: Int) throws(LoadError) -> UInt64 {
        let stringBytes = p.arguments.reduce(0) { $0 + $1.count + 1 }
            + p.environment.reduce(0) { $0 + $1.count + 1 }
            + p.executableName.utf8.count + 1 + p.platform.utf8.count + 1 + 16
        let pointerBytes = (1 + p.arguments.count + 1 + p.environment.count + 1 + 2 * (p.auxiliary.count + 1)) * 8
        let needed = 8 + stringBytes + pointerBytes + 64
        guard needed <= limit else { throw .argumentsTooLarge(bytes: needed, limit: limit) }

        var cursor = top - 8  // a NULL word at the very top, as Linux leaves
        store(cursor, UInt64(0))
        func pushString(_ s: [UInt8]) -> UInt64 {
            cursor -= UInt64(s.count + 1)
            write(cursor, s + [0])
            return cursor
        }
        func pushString(_ s: String) -> UInt64 { pushString(Array(s.utf8)) }
        let execfn = pushString(p.executableName)
        // Environment strings sit above argument strings; each block is in order.
        var envPointers = [UInt64](repeating: 0, count: p.environment.count)
        for i in p.environment.indices.reversed() { envPointers[i] = pushString(p.environment[i]) }
        var argPointers = [UInt64](repeating: 0, count: p.arguments.count)
        for i in p.arguments.indices.reversed() { argPointers[i] = pushString(p.arguments[i]) }
        cursor &= ~15
        let platform = pushString(p.platform)
        cursor -= 16
        let random = cursor
        write(random, Array(p.randomBytes.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - p.randomBytes.count)))

        var aux: [(UInt64, UInt64)] = []
        for (type, value) in p.auxiliary {
            switch type {
            case .execfn: aux.append((type.rawValue, execfn))
            case .platform: aux.append((type.rawValue, platform))
            case .random: aux.append((type.rawValue, random))
            case .null: continue
            default: aux.append((type.rawValue, value))
            }
        }
        aux.append((AuxType.null.rawValue, 0))
        let words = 1 + (argPointers.count + 1) + (envPointers.count + 1) + 2 * aux.count
        var sp = (cursor - UInt64(words * 8)) & ~15
        let result = sp
        store(sp, UInt64(p.arguments.count)); sp += 8
        for a in argPointers { store(sp, a); sp += 8 }
        store(sp, 0); sp += 8
        for e in envPointers { store(sp, e); sp += 8 }
        store(sp, 0); sp += 8
        for (t, v) in aux { store(sp, t); store(sp + 8, v); sp += 16 }
        return result
    }

    /// Linux's auxiliary vector for a program, from this process's own values where the
    /// kernel gave them (hardware capabilities, vDSO, clock ticks, signal stack size).
    public static func auxiliary(main: MappedImage, interpreterBase: UInt64?, vdso: UInt64? = nil) -> [(AuxType, UInt64)] {
        func host(_ t: AuxType) -> UInt64 { UInt64(cj_getauxval(UInt(t.rawValue))) }
        var v: [(AuxType, UInt64)] = []
        let ehdr = vdso ?? host(.sysinfoEHDR)
        if ehdr != 0 { v.append((.sysinfoEHDR, ehdr)) }
        v.append((.minsigstksz, host(.minsigstksz)))
        v.append((.hwcap, host(.hwcap)))
        v.append((.pagesz, Memory.pageSize))
        v.append((.clktck, host(.clktck) == 0 ? 100 : host(.clktck)))
        v.append((.phdr, main.programHeaders ?? 0))
        v.append((.phent, UInt64(ELFConstants.programHeaderSize)))
        v.append((.phnum, UInt64(main.programHeaderCount)))
        v.append((.base, interpreterBase ?? 0))
        v.append((.flags, 0))
        v.append((.entry, main.entry))
        v.append((.uid, UInt64(getuid())))
        v.append((.euid, UInt64(geteuid())))
        v.append((.gid, UInt64(getgid())))
        v.append((.egid, UInt64(getegid())))
        v.append((.secure, 0))
        v.append((.random, 0))
        v.append((.hwcap2, host(.hwcap2)))
        v.append((.execfn, 0))
        v.append((.platform, 0))
        if host(.rseqFeatureSize) != 0 {
            v.append((.rseqFeatureSize, host(.rseqFeatureSize)))
            v.append((.rseqAlign, host(.rseqAlign)))
        }
        return v
    }

    private static func store(_ address: UInt64, _ value: UInt64) {
        UnsafeMutableRawPointer(bitPattern: UInt(address))!.storeBytes(of: value, as: UInt64.self)
    }

    private static func write(_ address: UInt64, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { src in
            UnsafeMutableRawPointer(bitPattern: UInt(address))!.copyMemory(from: src.baseAddress!, byteCount: src.count)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
