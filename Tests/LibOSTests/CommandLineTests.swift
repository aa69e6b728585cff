// CommandLineTests.swift: the junction executable's own command line: --help/-h,
// --version, usage errors (exit 2), and the program's words never read as junction's.
import Foundation
import Testing
import TestSupport

@Suite("junction's command line", .timeLimit(.minutes(2)))
struct CommandLineTests {
    static var binary: String { siblingExecutable("junction") }

    @Test("--help and -h exit 0 and name every option, with examples and exit statuses", arguments: ["--help", "-h"])
    func help(flag: String) throws {
        let r = try runProcess(Self.binary, [flag])
        #expect(r.status == 0, "\(r)")
        for option in ["--strace", "--kthreads", "--intercept", "--mount", "--version", "-h, --help"] {
            #expect(r.stdout.contains(option), "\(option) missing from:\n\(r.stdout)")
        }
        #expect(r.stdout.contains("Examples:") && r.stdout.contains("junction -- /bin/echo hello"), "\(r.stdout)")
        #expect(r.stdout.contains("Exit status:") && r.stdout.contains("127    the program was not found"), "\(r.stdout)")
    }

    @Test("--version prints the version and exits 0")
    func version() throws {
        let r = try runProcess(Self.binary, ["--version"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(r)")
    }

    @Test("an unknown option exits 2 with a message naming it")
    func unknownOption() throws {
        let r = try runProcess(Self.binary, ["--bogus", "/bin/true"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("--bogus") && r.stderr.contains("junction --help"), "\(r)")
        #expect(r.stdout.isEmpty, "\(r)")
    }

    @Test("a bad option value and a missing program exit 2", arguments: [["--kthreads", "0", "/bin/true"], ["--intercept", "nope", "/bin/true"], [], ["--strace"]])
    func usageErrors(args: [String]) throws {
        let r = try runProcess(Self.binary, args)
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.hasPrefix("junction: "), "\(r)")
    }

    @Test("everything after -- or after the program path is the program's",
          arguments: [["--", "/bin/echo", "--help"], ["/bin/echo", "--help"], ["--kthreads", "1", "/bin/echo", "-h", "--version"],
                      ["--kthreads=1", "--", "/bin/echo", "--", "--bogus"]])
    func programWords(args: [String]) throws {
        let r = try runProcess(Self.binary, args)
        let start = args.firstIndex(of: "/bin/echo")!
        let native = try runProcess("/bin/echo", Array(args[(start + 1)...]))   // GNU echo: a lone --help is its own help
        #expect(r == native, "native:\n\(native)\njunction:\n\(r)")
        #expect(!r.stdout.contains("OVERVIEW: Run an unmodified Linux program"), "\(r)")
    }

    @Test("a program that is not there exits 127")
    func notFound() throws {
        let r = try runProcess(Self.binary, ["--", "/nonexistent/junction-test-program"])
        #expect(r.status == 127, "\(r)")
    }
}
