// CommandLineSplit.swift: splits junction's command line into its own options and the
// program's words (everything after `--`, or from the program path on), and the help text.
import ArgumentParser

/// junction's version (`junction --version`); the package's release tag.
let junctionVersion = "0.1.0"

enum CommandLineSplit {
    /// `args` (without argv[0]) split at `--` or at the first word that is not an option
    /// or an option's value. Nothing after the split point is parsed as junction's.
    static func split(_ args: [String], optionsTakingValue: Set<String>) -> (options: [String], program: [String]) {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { return (Array(args[..<i]), Array(args[(i + 1)...])) }
            guard a.hasPrefix("-"), a != "-" else { return (Array(args[..<i]), Array(args[i...])) }
            i += (!a.contains("=") && optionsTakingValue.contains(a)) ? 2 : 1
        }
        return (args, [])
    }

    /// The program's words when `args` has none of junction's options before them
    /// (`-- PROGRAM...` or `PROGRAM...`), nil otherwise (or with no program).
    static func programWithoutOptions(_ args: [String]) -> [String]? {
        guard let first = args.first else { return nil }
        if first == "--" { return args.count > 1 ? Array(args.dropFirst()) : nil }
        return first.hasPrefix("-") ? nil : args
    }

    /// The long names (`--kthreads`) of `command`'s `@Option`s, found by reflection so an
    /// option added later is known here without a list to keep in step.
    static func optionsTakingValue<C: ParsableArguments>(of command: C) -> Set<String> {
        var out: Set<String> = []
        for child in Mirror(reflecting: command).children {
            guard let label = child.label, String(describing: type(of: child.value)).hasPrefix("Option<") else { continue }
            var name = "--"
            for ch in label.drop(while: { $0 == "_" }) {
                if ch.isUppercase { name += "-" + ch.lowercased() } else { name.append(ch) }
            }
            out.insert(name)
        }
        return out
    }
}

extension Junction {
    static let discussion = """
        Everything after `--`, or from the program path on, is the program's: junction never \
        reads it as its own options (`junction -- /bin/echo --help` prints --help).

        Examples:
          junction -- /bin/echo hello
          junction /bin/ls -l /
          junction --strace -- /bin/true
          junction --kthreads 2 -- /usr/bin/python3 -c 'print(1)'
          junction --intercept seccomp -- /bin/busybox sh
          junction --mount memfs:/tmp --mount host:/srv/data:/data -- /bin/ls /data
          junction --net tap:jtap0 --ip 10.7.0.2/24 --host-ip 10.7.0.1/24 -- /usr/bin/redis-server

        Exit status:
          N      the program's exit status; a program killed by signal S kills
                 junction with S too (a shell shows 128+S)
          0      --help, -h, --version
          1      junction could not start the program (e.g. no interception)
          2      usage error: unknown option, bad option value, no program
          126    the program cannot be loaded (not ELF or #!, no permission)
          127    the program was not found
        """
}
