// swift-tools-version:6.1
// Junction for Swift: a kernel-bypass library OS. The dependency arrows below are the
// architecture (Documentation/Architecture.md draws the same picture).
import PackageDescription

let package = Package(
    name: "Junction",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "UThreads", targets: ["UThreads"]),
        .library(name: "NUMA", targets: ["NUMA"]),
        .library(name: "Loader", targets: ["Loader"]),
        .library(name: "FileSystem", targets: ["FileSystem"]),
        .library(name: "SyscallEmu", targets: ["SyscallEmu"]),
        .library(name: "LibOS", targets: ["LibOS"]),
        .library(name: "NetStack", targets: ["NetStack"]),
        .library(name: "NetProtocols", targets: ["NetProtocols"]),
        .library(name: "NICQueues", targets: ["NICQueues"]),
        .library(name: "NICQueuesCore", targets: ["NICQueuesCore"]),
        .library(name: "NICQueuesXDP", targets: ["NICQueuesXDP"]),
        .library(name: "NICQueuesVerbs", targets: ["NICQueuesVerbs"]),
        .executable(name: "junction", targets: ["junction"]),
        .executable(name: "junction-bench", targets: ["junction-bench"]),
        .executable(name: "uthreads-demo", targets: ["uthreads-demo"]),
        .executable(name: "elf-run", targets: ["elf-run"]),
        .executable(name: "nic-peer", targets: ["nic-peer"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "http-hello", targets: ["http-hello"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        // The libraries' diagnostics (an embedding program picks the handler; junction's
        // writes bare lines to stderr).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),   // LogHandler.log(event:)
        // `swift package generate-documentation --target UThreads` (the DocC catalogs).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // The thread runtime's C and assembly: the context switch, the %gs-based
        // per-kthread area, the stack-overflow reporter, atomics over C structs, futex.
        .target(
            name: "CUThreads",
            path: "Sources/CUThreads",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // The interception's C and assembly: the system-call entry, Syscall User
        // Dispatch, seccomp, user-memory access, entering a loaded program.
        .target(
            name: "CJunction",
            dependencies: ["CUThreads"],
            path: "Sources/CJunction",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // libnuma (Debian's libnuma-dev), as a system-library module.
        .systemLibrary(
            name: "CNUMA",
            path: "Sources/CNUMA"
        ),
        // NUMA nodes: which exist, binding memory to a node, placing a thread on one.
        .target(
            name: "NUMA",
            dependencies: ["CNUMA"]
        ),
        .target(
            name: "UThreads",
            dependencies: [
                "CUThreads",
                "NUMA",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
        ),
        // liburing, linked the way STYLE.md asks: a plain C target with linker settings.
        .target(
            name: "CURing",
            path: "Sources/CURing",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // The VFS: MemFS, HostFS over io_uring, DevFS, pipes.
        .target(
            name: "FileSystem",
            dependencies: [
                "UThreads",
                "CUThreads",
                "CURing",
                "NUMA",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Linux system-call interface: interception entry, dispatch table, handlers.
        .target(
            name: "SyscallEmu",
            dependencies: [
                "CJunction",
                "UThreads",
                "FileSystem",
                "Loader",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
            // Every call passes through the dispatcher: its lock-guarded class properties
            // are declared `@exclusivity(unchecked)` (no dynamic checks on that path, and no
            // access tracked per OS thread across a uthread park).
        ),
        // The NetStack backend of the socket layer: AF_INET/AF_INET6 sockets on the
        // instance's --net device and its in-stack loopback (SyscallEmu stays free of NetStack).
        .target(
            name: "NetSockets",
            dependencies: [
                "SyscallEmu",
                "NetStack",
                "NICQueues",
                "FileSystem",
                "UThreads",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "NetSocketsTests",
            dependencies: ["NetSockets", "NetStack", "NICQueues", "SyscallEmu", "UThreads", "FileSystem"]
        ),
        // Composes an instance: runtime, file systems, program, interception, network.
        .target(
            name: "LibOS",
            dependencies: ["CJunction", "UThreads", "FileSystem", "Loader", "SyscallEmu", "NetSockets", "NetStack", "NICQueues", "NUMA"]
        ),
        .executableTarget(
            name: "junction",
            dependencies: [
                "LibOS",
                "NUMA",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The Swift runtime linked in: its start-up is part of every program junction
            // runs, and ld.so resolving symbols across ten Swift libraries was about a
            // quarter of `junction -- /bin/true`'s CPU time (Performance.md, startup).
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-l_FoundationCollections", "-l_FoundationCShims"])]
        ),
        // ELF64 loading: parse, map, initial stack, enter. Usable on its own.
        .target(
            name: "Loader",
            dependencies: [
                "CJunction",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "elf-run",
            dependencies: ["Loader"],
            path: "Examples/elf-run"
            // Build it with a static Swift runtime (`swift build -c release
            // --static-swift-stdlib --product elf-run`): its own start-up is part of every
            // program it runs, and loading the Swift libraries is most of it.
        ),
        // NIC queues' C side with no C library: atomics on shared memory, TAP, AF_PACKET,
        // fd passing.
        .target(
            name: "CNICQueues",
            path: "Sources/CNICQueues",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // AF_XDP through libxdp/libbpf.
        .target(
            name: "CXDP",
            dependencies: ["CNICQueues"],
            path: "Sources/CXDP",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]
        ),
        // ibverbs raw-packet queues.
        .target(
            name: "CVerbs",
            dependencies: ["CNICQueues"],
            path: "Sources/CVerbs",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("ibverbs")]
        ),
        // Packet pools and the NetworkDevice queue interface over loopback, shared memory
        // and TAP; fault injection and pcap wrappers. No C library.
        .target(
            name: "NICQueuesCore",
            dependencies: ["CNICQueues", "UThreads", "NetProtocols", "NUMA",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The AF_XDP backend (links libxdp and libbpf).
        .target(
            name: "NICQueuesXDP",
            dependencies: ["NICQueuesCore", "CNICQueues", "CXDP"]
        ),
        // The ibverbs backend (links libibverbs).
        .target(
            name: "NICQueuesVerbs",
            dependencies: ["NICQueuesCore", "CNICQueues", "CVerbs"]
        ),
        // Every backend, and DeviceSpec opening any of them from a string ("tap:jt0").
        .target(
            name: "NICQueues",
            dependencies: ["NICQueuesCore", "NICQueuesXDP", "NICQueuesVerbs", "CNICQueues", "NUMA"]
        ),
        // A second process for the shared-memory link tests.
        .executableTarget(
            name: "nic-peer",
            dependencies: ["NICQueues"],
            path: "Examples/nic-peer"
        ),
        .testTarget(
            name: "NICQueuesTests",
            dependencies: ["NICQueues", "NICQueuesCore", "CNICQueues", "CXDP", "CVerbs", "UThreads", "TestSupport"]
        ),
        .executableTarget(
            name: "junction-bench",
            dependencies: [
                "NICQueues",
                "CNICQueues",
                "NetStack",
                "UThreads",
                "Loader",
                "FileSystem",
                "CJunction",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/junction-bench"
        ),
        .executableTarget(
            name: "uthreads-demo",
            dependencies: ["UThreads"],
            path: "Examples/uthreads-demo"
        ),
        .testTarget(
            name: "UThreadsTests",
            dependencies: ["UThreads", "CUThreads"]
        ),
        .testTarget(
            name: "FileSystemTests",
            dependencies: [
                "FileSystem",
                "UThreads",
                "CJunction",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // Fixtures shared by the test targets (running commands, compiling C programs).
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "LibOSTests",
            dependencies: ["LibOS", "TestSupport", "SyscallEmu", "NUMA", "NICQueuesCore", "FileSystem", "CJunction", "UThreads",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // AF_UNIX sockets through the SocketHandle contract, on uthreads.
        .testTarget(
            name: "UnixSocketTests",
            dependencies: ["SyscallEmu", "FileSystem", "UThreads", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "LoaderTests",
            dependencies: ["Loader", "TestSupport"]
        ),
        // The pure protocol layers, no dependencies (no device, no runtime, no C library):
        // Wire/ parses and emits Ethernet, ARP, IPv4, ICMP, UDP and TCP, holding no state;
        // Fragments/ reassembles IPv4; TCP/ is the TCP state machine (no lock, no clock).
        .target(
            name: "NetProtocols"
        ),
        // Interface/ runs ARP, routing, demultiplexing and the TCP timer heap over a
        // NICQueuesCore device on the UThreads runtime; Sockets/ are UDP and TCP sockets
        // and listeners. Re-exports NetProtocols (`import NetStack` brings both).
        .target(
            name: "NetStack",
            dependencies: [
                "NetProtocols",
                "NICQueuesCore",
                "UThreads",
                .product(name: "HeapModule", package: "swift-collections"),
            ]
            // Every packet touches the interface's and the sockets' state (a class's
            // stored properties, guarded by the interface's lock): those properties are
            // `@exclusivity(unchecked)`, as dynamic checks were a third of the per-packet
            // time (perf, Performance.md).
        ),
        .testTarget(
            name: "NetStackTests",
            dependencies: [
                "NetStack",
                "NetProtocols",
                "NICQueues",
                "UThreads",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Fixtures"]
        ),
        // A UDP and TCP echo server on NICQueues + NetStack + UThreads (and the interop tests' peer).
        .executableTarget(
            name: "echo-server",
            dependencies: ["NetStack", "NICQueues", "UThreads"],
            path: "Examples/echo-server"
        ),
        // A minimal HTTP/1.1 server on NetStack alone (curl from the host over TAP).
        .executableTarget(
            name: "http-hello",
            dependencies: ["NetStack", "NICQueues", "UThreads"],
            path: "Examples/http-hello"
        ),
    ]
)
