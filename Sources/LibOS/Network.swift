// Network.swift: an instance's --net options: parsing and checking them, opening the
// NICQueues device (creating a TAP and its host side), the device's and the loopback's
// interfaces started on the runtime, and the NetStack socket provider over them.
import FileSystem
import Glibc
import NICQueues
import NetSockets
import NetStack
import UThreads

/// `--net DEVICE --ip A.B.C.D/NN [--gateway G] [--mac M] [--mtu N] [--host-ip H/NN]`.
public struct NetworkOptions: Sendable, Equatable {
    public var device: String
    public var address: String
    public var gateway: String?
    public var mac: String?
    public var mtu: Int?
    public var hostAddress: String?

    public init(device: String, address: String, gateway: String? = nil, mac: String? = nil, mtu: Int? = nil,
                hostAddress: String? = nil) {
        self.device = device
        self.address = address
        self.gateway = gateway
        self.mac = mac
        self.mtu = mtu
        self.hostAddress = hostAddress
    }
}

enum NetworkSetup {
    /// Opens the device and starts the instance's interfaces on `runtime`.
    static func start(_ o: NetworkOptions, on runtime: Runtime) throws(InstanceError) -> NetStackSocketProvider {
        func bad(_ why: String) -> InstanceError { .network(why) }
        let cidr: IPv4CIDR
        do { cidr = try IPv4CIDR(parsing: o.address) } catch { throw bad("--ip '\(o.address)': \(error) (expected A.B.C.D/NN)") }
        var gateway: IPv4Address? = nil
        if let g = o.gateway {
            guard let a = IPv4Address(g) else { throw bad("--gateway '\(g)' is not an IPv4 address") }
            guard cidr.contains(a) else { throw bad("--gateway \(g) is not on \(cidr.network)/\(cidr.prefixLength)") }
            gateway = a
        }
        var mac: NetStack.MACAddress? = nil
        if let m = o.mac {
            guard let a = NetStack.MACAddress(m), a.isUnicast else { throw bad("--mac '\(m)' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)") }
            mac = a
        }
        if let mtu = o.mtu, !(576...9000).contains(mtu) { throw bad("--mtu must be 576...9000") }
        var host: IPv4CIDR? = nil
        if let h = o.hostAddress {
            do { host = try IPv4CIDR(parsing: h) } catch { throw bad("--host-ip '\(h)': \(error) (expected A.B.C.D/NN)") }
        }
        let spec: DeviceSpec
        do { spec = try DeviceSpec(parsing: o.device) } catch { throw bad("--net: \(error)") }
        if host != nil, case .tap = spec {} else if host != nil { throw bad("--host-ip is for --net tap:NAME only") }
        if case .tap = spec {
            let admin = geteuid() == 0 || hasNetAdmin()
            guard admin else {
                throw bad("--net \(spec) needs CAP_NET_ADMIN to create a TAP device: run junction as root, or give it the "
                    + "capability (sudo setcap cap_net_admin+ep $(command -v junction))")
            }
            guard access("/dev/net/tun", R_OK | W_OK) == 0 else {
                throw bad("--net \(spec) needs /dev/net/tun (load the tun module: sudo modprobe tun)")
            }
        }
        let device: AnyNetworkDevice
        // A tap: device is multi-queue with flow-aware steering (TapSteering.swift), so
        // that a forked child reads its own queue and gets its own connections
        // (Architecture.md, "Sockets on NetStack after fork"). JUNCTION_NET_FORK_QUEUES=0
        // keeps one queue: children then have the loopback only.
        var forkQueues = getenv("JUNCTION_NET_FORK_QUEUES").map { String(cString: $0) != "0" } ?? true
        if case .tap(_, let queues) = spec, queues == 1 {} else { forkQueues = false }
        let numaNode = runtime.configuration.numaNode
        do { device = try spec.open(shmTimeout: .seconds(60), numaNode: numaNode, tapMultiQueue: forkQueues) } catch { throw bad("--net \(spec): \(error)") }
        var steering: TapSteering?
        var steeringUnavailable: String? = forkQueues ? nil : "JUNCTION_NET_FORK_QUEUES=0"
        if forkQueues, case .tap(let name, _) = spec {
            do { steering = try TapSteering(queue0FD: device.notificationFD(queue: 0), interfaceName: name) } catch {
                steeringUnavailable = "\(error)"
            }
        }
        if case .tap(let name, _) = spec {
            _ = try? command(["sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1"])   // no router solicitations
            if let mtu = o.mtu { try command(["ip", "link", "set", name, "mtu", String(mtu)]) }
            if let host { try command(["ip", "addr", "replace", host.description, "dev", name]) }
            try command(["ip", "link", "set", name, "up"])
        }
        let info = device.info
        let config = InterfaceConfiguration(mac: mac ?? NetStack.MACAddress(rawValue: info.mac.raw), address: cidr,
                                            gateway: gateway, mtu: min(o.mtu ?? info.mtu, info.mtu))
        let network: InstanceNetwork
        do {
            let external = try NetworkInterface(device: device, configuration: config)
            if let steering { external.willResolve = { steering.resolving($0.rawValue) } }
            network = InstanceNetwork(external: external, loopback: try InstanceNetwork.makeLoopbackInterface())
            network.steering = steering
            try network.start(on: runtime)
        } catch { throw bad("\(spec): \(error)") }
        let provider = NetStackSocketProvider(network: network)
        provider.deviceName = "\(spec)"
        provider.steeringUnavailable = steeringUnavailable
        if let steering, case .tap(let name, _) = spec {
            // A forked child's own queue of the TAP (one the first process opened at
            // start), with the parent's interface configuration.
            provider.attachQueue = { () throws -> NetworkInterface in
                guard let fd = steering.claimQueue() else {
                    throw NICError.invalidConfiguration("all \(TapSteering.queueCount - 1) queues of tap:\(name) for forked processes are taken")
                }
                var c = TapConfiguration()
                c.multiQueue = true
                c.numaNode = numaNode
                c.adoptedQueues = [fd]
                let e = try NetworkInterface(device: try TapDevice(name: name, configuration: c), configuration: config)
                e.willResolve = { steering.resolving($0.rawValue) }
                return e
            }
        }
        return provider
    }

    /// Runs a host command (ip, sysctl) to its end; a failure is the instance's error.
    static func command(_ argv: [String]) throws(InstanceError) {
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        let r = posix_spawnp(&pid, argv[0], nil, nil, cargs, environ)
        guard r == 0 else { throw .network("\(argv.joined(separator: " ")): \(String(cString: strerror(r)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw .network("\(argv.joined(separator: " ")) failed (status \(status >> 8))") }
    }

    /// CAP_NET_ADMIN in the effective set (/proc/self/status).
    static func hasNetAdmin() -> Bool {
        guard let f = fopen("/proc/self/status", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, f) != nil {
            let s = String(cString: line)
            if s.hasPrefix("CapEff:"), let v = UInt64(s.dropFirst(7).trimmingCharacters(in: " \t\n"), radix: 16) {
                return v & (1 << 12) != 0
            }
        }
        return false
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return s
    }
}
