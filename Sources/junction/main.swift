// junction: runs an unmodified Linux program inside this process on the library OS.
import ArgumentParser
import LibOS
import Logging
import NUMA

#if canImport(Glibc)
import Glibc
#endif

struct Junction: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "junction",
        abstract: "Run an unmodified Linux program on the Junction library OS.",
        usage: "junction [OPTIONS] [--] PROGRAM [ARGS...]",
        discussion: Junction.discussion,
        version: junctionVersion,
        helpNames: [.short, .long])

    @Flag(help: "Print each system call with its arguments and result to stderr (e.g. --strace).")
    var strace = false

    @Option(help: "Kernel threads to run uthreads on, 1...1024 (default: the CPUs this process may use; e.g. --kthreads 2).")
    var kthreads: Int?

    @Option(help: "How system calls are intercepted: auto (Syscall User Dispatch, seccomp without it, then rewriting), trap (SUD traps only), rewrite, or seccomp (seccomp traps, then rewriting); e.g. --intercept trap.")
    var intercept: String = "auto"

    @Option(help: "Time slice in milliseconds after which a thread running application code is preempted; 0: never (e.g. --quantum 10).")
    var quantum: Int = 10

    @Option(help: "Mount a file system: memfs:/PATH or host:/SOURCE:/PATH (repeatable; e.g. --mount memfs:/tmp).")
    var mount: [String] = []

    @Option(name: .customLong("unix-export"), help: "A host directory where AF_UNIX sockets the program binds are also host sockets, reachable by host programs (repeatable).")
    var unixExport: [String] = []

    @Option(help: ArgumentHelp("Put the program's AF_INET/AF_INET6 sockets on NetStack over this device: tap:NAME, xdp:IFNAME[:Q], shm:PATH or verbs:DEV (127.0.0.1 stays inside the instance).", valueName: "device"))
    var net: String?

    @Option(help: ArgumentHelp("The instance's address with --net, e.g. 10.7.0.2/24.", valueName: "A.B.C.D/NN"))
    var ip: String?

    @Option(help: "With --net: the default gateway.")
    var gateway: String?

    @Option(help: "With --net: the interface's MAC address (default: the device's).")
    var mac: String?

    @Option(help: "With --net: the interface's MTU (default: the device's).")
    var mtu: Int?

    @Option(name: .customLong("host-ip"), help: ArgumentHelp("With --net tap:NAME: the address of the TAP's host side, e.g. 10.7.0.1/24.", valueName: "A.B.C.D/NN"))
    var hostIp: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("The least severe libOS diagnostic written to stderr: \(Logger.Level.names); unsupported calls are warnings, --strace lines info (e.g. --log-level error).", valueName: "level"))
    var logLevel: String = "info"

    @Option(name: .customLong("numa-node"), help: ArgumentHelp("Run the kthreads, and allocate uthread stacks, io_uring rings and the --net packet pool, on this NUMA node (e.g. --numa-node 0).", valueName: "N"))
    var numaNode: Int?

    @Option(help: ArgumentHelp("A name server for the program's resolver (repeatable): the instance's /etc/resolv.conf lists these instead of the host's; with --net the queries go over the instance's own stack.", valueName: "A.B.C.D"))
    var dns: [String] = []

    // Split off before parsing (CommandLineSplit): never parsed as junction's options.
    @Argument(parsing: .postTerminator, help: "The program and its arguments (e.g. -- /bin/echo hello).")
    var command: [String] = []

    func run() throws {
        let args = command
        guard !args.isEmpty else { throw ValidationError("no program given: junction [options] -- PROGRAM [ARGS...]") }
        guard let mode = InterceptionMode(rawValue: intercept) else {
            throw ValidationError("--intercept must be one of \(InterceptionMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let kthreads, kthreads < 1 || kthreads > 1024 { throw ValidationError("--kthreads must be 1...1024") }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level must be one of \(Logger.Level.names)") }
        LoggingSystem.bootstrap { _ in StderrLineHandler(logLevel: level) }
        var config = InstanceConfiguration()
        if let numaNode {
            do { config.numaNode = try NUMANode(numaNode) } catch { throw ValidationError("--numa-node: \(error)") }
        }
        config.kthreads = kthreads
        guard quantum >= 0 && quantum <= 10_000 else { throw ValidationError("--quantum must be 0...10000 (milliseconds)") }
        config.quantum = quantum == 0 ? nil : .milliseconds(quantum)
        config.trace = strace
        config.interception = mode
        config.unixExports = unixExport
        config.dnsServers = dns
        if let net {
            guard let ip else { throw ValidationError("--net needs --ip A.B.C.D/NN") }
            config.network = NetworkOptions(device: net, address: ip, gateway: gateway, mac: mac, mtu: mtu, hostAddress: hostIp)
        } else if ip != nil || gateway != nil || mac != nil || mtu != nil || hostIp != nil {
            throw ValidationError("--ip, --gateway, --mac, --mtu and --host-ip go with --net DEVICE")
        }
        do throws(InstanceError) {
            config.mounts = try mount.map { spec throws(InstanceError) in try MountSpec(parsing: spec) }
        } catch {
            Self.fail(error)
        }
        Self.launch(args, configuration: config)
    }

    /// Runs the program through the instance's phases; returns only by exiting.
    static func launch(_ args: [String], configuration config: InstanceConfiguration) -> Never {
        var environment: [String] = []
        var e = environ
        while let p = e.pointee {
            environment.append(String(cString: p))
            e += 1
        }
        let instance = Instance(configuration: config)
        do throws(InstanceError) {
            try instance.start()
            try instance.run(args, environment: environment)
        } catch {
            instance.shutDown()
            fail(error)
        }
        // The program ends this process with exit_group.
        instance.wait()
    }

    static func fail(_ error: InstanceError) -> Never {
        let line = "junction: \(error)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        Glibc.exit(error.exitStatus)
    }
}

// No options of junction's (`junction -- PROGRAM`, `junction PROGRAM`): the defaults,
// without ArgumentParser's reflection (a fifth of junction's own start-up).
if let program = CommandLineSplit.programWithoutOptions(Array(CommandLine.arguments.dropFirst())) {
    LoggingSystem.bootstrap { _ in StderrLineHandler(logLevel: .info) }  // --log-level's default
    Junction.launch(program, configuration: InstanceConfiguration())
}

// Usage errors exit 2 (ArgumentParser's default is 64); --help and --version exit 0.
let split = CommandLineSplit.split(Array(CommandLine.arguments.dropFirst()),
                                   optionsTakingValue: CommandLineSplit.optionsTakingValue(of: Junction()))
do {
    var command = try Junction.parseAsRoot(split.options + ["--"] + split.program)
    try command.run()
} catch {
    let code = Junction.exitCode(for: error)
    if code == .success { Junction.exit(withError: error) }
    if let e = error as? ExitCode { Junction.exit(withError: e) }
    let line = "junction: \(Junction.message(for: error))\nSee 'junction --help' for more information.\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    Glibc.exit(2)
}
