// Loader.swift: the public steps of loading a program: resolve `#!` scripts, parse and
// map the program and its interpreter, build the initial stack, and enter it.
import CJunction
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A program with its `#!` chain followed: the ELF file to load and the final argv.
public struct ResolvedProgram: Sendable {
    /// Path of the ELF file that will be mapped.
    public var path: String
    /// argv after Linux's script rewriting, as bytes (no NUL, not necessarily UTF-8).
    public var arguments: [[UInt8]]
    /// AT_EXECFN: the path originally executed (the script's, for a script).
    public var executableName: String
    public var elf: ELFFile
    /// The program's own dynamic loader (PT_INTERP), parsed.
    public var interpreter: (path: String, elf: ELFFile)?
}

/// A program mapped into this process with its stack built, ready to `enter()`.
public struct ReadyProgram: Sendable {
    public var program: ResolvedProgram
    public var main: MappedImage
    public var interpreter: MappedImage?
    /// Where execution starts: the interpreter's entry, or the program's.
    public var entry: UInt64
    /// Points at argc.
    public var stackPointer: UInt64
    /// The stack mapping (guard page excluded).
    public var stack: Range<UInt64>

    /// Unmaps the program, its interpreter and its stack (for a caller that decides not
    /// to enter after all, or measures loading).
    public func unmap() {
        for r in [main.range, interpreter?.range, (stack.lowerBound - Memory.pageSize)..<stack.upperBound].compactMap({ $0 }) {
            Memory.unmap(r.lowerBound, r.upperBound - r.lowerBound)
        }
    }

    /// Resets the process the way execve would (signals, alt stack, rseq, close-on-exec
    /// descriptors, thread name) and jumps to the program. Never returns.
    public func enter() -> Never {
        let name = program.executableName.split(separator: "/").last.map(String.init) ?? program.executableName
        Loader.enter(entry: entry, stackPointer: stackPointer, threadName: String(name.prefix(15)))
    }
}

public enum Loader {
    /// Linux follows at most this many `#!` interpreters (BINPRM_MAX_RECURSION).
    public static let maxScriptDepth = 4
    /// Used when RLIMIT_STACK is unlimited or unreadable.
    public static let defaultStackSize = 8 << 20

    /// Opens `path`, follows `#!` lines (Linux's argv rules, depth limit) and parses the
    /// ELF program and its PT_INTERP.
    public static func resolve(path: String, arguments: [String]) throws(LoadError) -> ResolvedProgram {
        try resolve(path: path, argumentBytes: arguments.map { Array($0.utf8) })
    }

    /// ``resolve(path:arguments:)`` with argv as the kernel passes it: bytes, kept exactly.
    public static func resolve(path: String, argumentBytes arguments: [[UInt8]]) throws(LoadError) -> ResolvedProgram {
        var current = path
        var argv = arguments.isEmpty ? [Array(path.utf8)] : arguments
        for depth in 0...maxScriptDepth {
            try checkExecutable(current)
            let file = try HostFile(path: current)
            let head = try file.head(ScriptLine.bufferSize)
            if let line = try ScriptLine.parse(head, path: current) {
                guard depth < maxScriptDepth else { throw .scriptDepthExceeded(path: path) }
                // Linux: drop argv[0], then push the script path, the optional argument
                // and the interpreter in front.
                var next = [Array(line.interpreter.utf8)]
                if let a = line.argument { next.append(Array(a.utf8)) }
                next.append(Array(current.utf8))
                next.append(contentsOf: argv.dropFirst())
                argv = next
                current = line.interpreter
                continue
            }
            guard head.count >= 4, head[0] == 0x7F, head[1] == 0x45, head[2] == 0x4C, head[3] == 0x46 else {
                throw .notExecutable(path: current)
            }
            let elf: ELFFile
            do { elf = try ELFFile.parse(file) } catch { throw located(error, current) }
            var interp: (String, ELFFile)?
            if let ipath = elf.interpreter {
                let ifile: HostFile
                do { ifile = try HostFile(path: ipath) } catch { throw located(error, ipath) }
                do throws(LoadError) {
                    let ielf = try ELFFile.parse(ifile)
                    guard ielf.interpreter == nil else { throw LoadError.notExecutable(path: ipath) }
                    interp = (ipath, ielf)
                } catch { throw located(error, ipath) }
            }
            return ResolvedProgram(path: current, arguments: argv, executableName: path, elf: elf, interpreter: interp)
        }
        throw .scriptDepthExceeded(path: path)
    }

    /// Maps the program and its interpreter, and builds the initial stack.
    /// - Parameters:
    ///   - program: what ``resolve(path:arguments:)`` found.
    ///   - environment: envp, as "NAME=value" strings.
    ///   - vdso: AT_SYSINFO_EHDR; nil passes this process's own vDSO.
    public static func map(_ program: ResolvedProgram, environment: [String], vdso: UInt64? = nil) throws(LoadError) -> ReadyProgram {
        try map(program, environmentBytes: environment.map { Array($0.utf8) }, vdso: vdso)
    }

    /// ``map(_:environment:vdso:)`` with envp as the kernel passes it: bytes, kept exactly.
    public static func map(_ program: ResolvedProgram, environmentBytes environment: [[UInt8]], vdso: UInt64? = nil) throws(LoadError) -> ReadyProgram {
        let mainFile = try HostFile(path: program.path)
        let main = try Mapper.map(program.elf, file: mainFile)
        var interpImage: MappedImage?
        if let (ipath, ielf) = program.interpreter {
            let ifile = try HostFile(path: ipath)
            do { interpImage = try Mapper.map(ielf, file: ifile) } catch {
                Memory.unmap(main.range.lowerBound, main.range.upperBound - main.range.lowerBound)
                throw error
            }
        }
        let stackSize = UInt64(stackLimit())
        let guardSize = Memory.pageSize
        var prot = PROT_READ | PROT_WRITE
        if program.elf.wantsExecutableStack { prot |= PROT_EXEC }
        let stackBase: UInt64
        switch Memory.map(0, stackSize + guardSize, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK) {
        case .success(let b): stackBase = b
        case .failure(let e): throw .mapping(path: program.path, call: "mmap(stack)", errno: e)
        }
        _ = Memory.protect(stackBase, guardSize, PROT_NONE)
        let top = stackBase + guardSize + stackSize
        var random = [UInt8](repeating: 0, count: 16)
        _ = random.withUnsafeMutableBytes { getrandom($0.baseAddress, 16, 0) }
        let aux = InitialStack.auxiliary(main: main, interpreterBase: interpImage?.loadBias, vdso: vdso)
        let params = StackParameters(arguments: program.arguments, environment: environment,
                                     executableName: program.executableName, randomBytes: random, auxiliary: aux)
        // Linux caps argv+envp at a quarter of the stack limit.
        let sp = try InitialStack.build(params, top: top, limit: Int(stackSize / 4))
        return ReadyProgram(program: program, main: main, interpreter: interpImage,
                            entry: interpImage?.entry ?? main.entry, stackPointer: sp,
                            stack: (stackBase + guardSize)..<top)
    }

    /// resolve + map.
    public static func load(path: String, arguments: [String], environment: [String]) throws(LoadError) -> ReadyProgram {
        try map(try resolve(path: path, arguments: arguments), environment: environment)
    }

    /// Resets the process the way execve would and jumps to `entry` with the stack at
    /// `stackPointer`. Never returns.
    public static func enter(entry: UInt64, stackPointer: UInt64, threadName: String?) -> Never {
        if let threadName {
            threadName.withCString { cj_exec_reset($0) }
        } else {
            cj_exec_reset(nil)
        }
        cj_enter(UInt(entry), UInt(stackPointer))
    }

    /// Finds `name` on PATH the way execvp does (a name with a slash is used as is).
    public static func searchPath(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return name }
        let dirs = (path ?? (getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin")).split(separator: ":", omittingEmptySubsequences: false)
        for d in dirs {
            let candidate = (d.isEmpty ? "." : String(d)) + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    private static func checkExecutable(_ path: String) throws(LoadError) {
        if case .failure(let e) = HostCall.run(path: path, { access($0, X_OK) }) {
            throw .io(path: path, call: "execute permission", errno: e)
        }
    }

    private static func stackLimit() -> Int {
        var rl = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_STACK.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max, rl.rlim_cur > 0 else { return defaultStackSize }
        return max(Int(min(rl.rlim_cur, 1 << 30)), 128 << 10)
    }

    private static func located(_ e: LoadError, _ path: String) -> LoadError {
        if case .elf(let inner) = e { return .invalidFile(path: path, inner) }
        return e
    }
}
