// elf-run: runs `elf-run PROGRAM ARGS...` inside this process using only the Loader
// library: the program is mapped here, entered on a fresh stack, and its system calls go
// straight to the kernel. Its exit code becomes ours.
import Loader

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String, _ code: Int32) -> Never {
    let line = "elf-run: " + message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(code)
}

let args = CommandLine.arguments
// `elf-run --startup-only` exits at once: the cost of elf-run itself, for junction-bench.
if args.count == 2, args[1] == "--startup-only" { exit(0) }
guard args.count >= 2 else {
    fail("usage: elf-run PROGRAM [ARGS...]", 2)
}
guard let path = Loader.searchPath(args[1]) else {
    fail("\(args[1]): command not found", 127)
}
var environment: [String] = []
var e = environ
while let p = e.pointee {
    environment.append(String(cString: p))
    e += 1
}
do {
    let ready = try Loader.load(path: path, arguments: Array(args[1...]), environment: environment)
    ready.enter()
} catch {
    // 126 like a shell for "found but cannot execute", 127 for missing files.
    if case .io(_, _, let errno) = error, errno == .noSuchFileOrDirectory { fail("\(error)", 127) }
    fail("\(error)", 126)
}
