// DeviceSpec.swift: device selection from the string the CLI takes (`loopback`,
// `shm:PATH`, `tap:NAME`, `xdp:IFNAME[:QUEUE]`, `verbs:DEVICE`), and AnyNetworkDevice,
// the one type that holds whichever backend was chosen.
import CNICQueues
import NICQueuesCore
import NUMA
import NICQueuesVerbs
import NICQueuesXDP
import Glibc

/// A parsed device string.
public enum DeviceSpec: Equatable, Sendable, CustomStringConvertible {
    case loopback
    case sharedMemory(path: String)
    case tap(name: String, queues: Int)
    case xdp(interface: String, queue: Int)
    case verbs(device: String)

    static let grammar = "expected loopback, shm:PATH, tap:NAME[:QUEUES], xdp:IFNAME[:QUEUE] or verbs:DEVICE"

    /// Parses a device string; every malformed one is a `NICError.badSpec(_:reason:)`.
    public init(parsing text: String) throws(NICError) {
        let kind = text.prefix { $0 != ":" }
        let rest = text.dropFirst(kind.count + (kind.count < text.count ? 1 : 0))
        let hasColon = kind.count < text.count
        func number(_ s: Substring, _ what: String) throws(NICError) -> Int {
            guard let n = Int(s), n >= 0, n < 4096 else { throw .badSpec(text, reason: "\(what) '\(s)' is not a number from 0 to 4095") }
            return n
        }
        func ifname(_ s: Substring, _ what: String) throws(NICError) -> String {
            guard !s.isEmpty else { throw .badSpec(text, reason: "\(kind) needs \(what), e.g. \(kind):\(kind == "tap" ? "jtap0" : "veth0")") }
            guard s.utf8.count < 16, !s.contains("/"), !s.contains(" ") else {
                throw .badSpec(text, reason: "'\(s)' is not an interface name (1 to 15 characters, no '/' or space)")
            }
            return String(s)
        }
        switch kind {
        case "loopback", "lo":
            guard !hasColon || rest.isEmpty else { throw .badSpec(text, reason: "loopback takes no argument") }
            self = .loopback
        case "shm":
            guard !rest.isEmpty else { throw .badSpec(text, reason: "shm needs a file path, e.g. shm:/dev/shm/junction-link") }
            self = .sharedMemory(path: String(rest))
        case "tap":
            let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try ifname(parts.first ?? "", "an interface name")
            let queues = parts.count > 1 ? try number(parts[1], "queue count") : 1
            guard queues >= 1 && queues <= 64 else { throw .badSpec(text, reason: "a TAP device has 1 to 64 queues") }
            self = .tap(name: name, queues: queues)
        case "xdp":
            let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try ifname(parts.first ?? "", "an interface name")
            self = .xdp(interface: name, queue: parts.count > 1 ? try number(parts[1], "queue") : 0)
        case "verbs":
            guard !rest.isEmpty, !rest.contains(":"), !rest.contains("/") else {
                throw .badSpec(text, reason: "verbs needs an RDMA device name, e.g. verbs:mlx5_0")
            }
            self = .verbs(device: String(rest))
        case "":
            throw .badSpec(text, reason: "empty device string; \(DeviceSpec.grammar)")
        default:
            throw .badSpec(text, reason: "unknown device kind '\(kind)'; \(DeviceSpec.grammar)")
        }
    }

    public var description: String {
        switch self {
        case .loopback: return "loopback"
        case .sharedMemory(let p): return "shm:\(p)"
        case .tap(let n, let q): return q == 1 ? "tap:\(n)" : "tap:\(n):\(q)"
        case .xdp(let i, let q): return "xdp:\(i):\(q)"
        case .verbs(let d): return "verbs:\(d)"
        }
    }

    /// Opens the device; `numaNode` places a loopback's or TAP's packet pool;
    /// `tapMultiQueue`: a TAP is opened IFF_MULTI_QUEUE even with one queue (so that a
    /// queue can be attached later, by a forked child).
    public func open(shmTimeout: Duration = .seconds(30), numaNode: NUMANode? = nil,
                     tapMultiQueue: Bool = false) throws(NICError) -> AnyNetworkDevice {
        switch self {
        case .loopback:
            var c = LoopbackConfiguration()
            c.numaNode = numaNode
            return .loopback(try LoopbackDevice(configuration: c))
        case .sharedMemory(let path):
            var c = SharedMemoryConfiguration()
            c.connectTimeout = shmTimeout
            return .sharedMemory(try SharedMemoryDevice(path: path, configuration: c))
        case .tap(let name, let queues):
            var c = TapConfiguration()
            c.queues = queues
            c.multiQueue = tapMultiQueue
            c.numaNode = numaNode
            return .tap(try TapDevice(name: name, configuration: c))
        case .xdp(let interface, let queue):
            var c = XDPConfiguration()
            c.queue = queue
            return .xdp(try XDPDevice(interface: interface, configuration: c))
        case .verbs(let device):
            do { return .verbs(try VerbsDevice(device: device)) } catch .noRDMADevice(let detail, _) {
                throw .noRDMADevice(detail: detail, available: DeviceSpec.availableBackends())
            }
        }
    }

    /// The backends that can work in this process on this machine, as device strings.
    public static func availableBackends() -> [String] {
        var out = ["loopback", "shm:PATH"]
        let admin = geteuid() == 0 || hasCapability(12)   // CAP_NET_ADMIN
        if admin && access("/dev/net/tun", R_OK | W_OK) == 0 { out.append("tap:NAME") }
        let s = socket(44 /* AF_XDP */, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if s >= 0 { close(s); out.append("xdp:IFNAME[:QUEUE]") }
        if !VerbsDevice.deviceNames().isEmpty { out.append("verbs:DEVICE") }
        return out
    }

    /// Whether capability `bit` is in this process's effective set (/proc/self/status).
    static func hasCapability(_ bit: Int) -> Bool {
        guard let f = fopen("/proc/self/status", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("CapEff:"), let v = UInt64(s.dropFirst(7).trimmingWhitespace(), radix: 16) {
                return v & (1 << UInt64(bit)) != 0
            }
        }
        return false
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return s
    }
}

/// Whichever backend a ``DeviceSpec`` opened; forwards the interface to it.
public enum AnyNetworkDevice: ~Copyable, NetworkDevice {
    case loopback(LoopbackDevice)
    case sharedMemory(SharedMemoryDevice)
    case tap(TapDevice)
    case xdp(XDPDevice)
    case verbs(VerbsDevice)

    public var info: DeviceInfo {
        switch self {
        case .loopback(let d): return d.info
        case .sharedMemory(let d): return d.info
        case .tap(let d): return d.info
        case .xdp(let d): return d.info
        case .verbs(let d): return d.info
        }
    }

    /// False when the far end of a shared-memory link has gone (always true otherwise).
    public var linkAlive: Bool {
        switch self {
        case .sharedMemory(let d): return d.peerAlive
        default: return true
        }
    }

    public var pool: PacketPool {
        switch self {
        case .loopback(let d): return d.pool
        case .sharedMemory(let d): return d.pool
        case .tap(let d): return d.pool
        case .xdp(let d): return d.pool
        case .verbs(let d): return d.pool
        }
    }

    public var statistics: DeviceStatistics {
        switch self {
        case .loopback(let d): return d.statistics
        case .sharedMemory(let d): return d.statistics
        case .tap(let d): return d.statistics
        case .xdp(let d): return d.statistics
        case .verbs(let d): return d.statistics
        }
    }

    public func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        switch self {
        case .loopback(let d): return try d.receive(queue: queue, into: &batch, limit: limit)
        case .sharedMemory(let d): return try d.receive(queue: queue, into: &batch, limit: limit)
        case .tap(let d): return try d.receive(queue: queue, into: &batch, limit: limit)
        case .xdp(let d): return try d.receive(queue: queue, into: &batch, limit: limit)
        case .verbs(let d): return try d.receive(queue: queue, into: &batch, limit: limit)
        }
    }

    public func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        switch self {
        case .loopback(let d): return try d.transmit(queue: queue, from: &batch)
        case .sharedMemory(let d): return try d.transmit(queue: queue, from: &batch)
        case .tap(let d): return try d.transmit(queue: queue, from: &batch)
        case .xdp(let d): return try d.transmit(queue: queue, from: &batch)
        case .verbs(let d): return try d.transmit(queue: queue, from: &batch)
        }
    }

    public func reclaim(queue: Int) throws(NICError) -> Int {
        switch self {
        case .loopback(let d): return try d.reclaim(queue: queue)
        case .sharedMemory(let d): return try d.reclaim(queue: queue)
        case .tap(let d): return try d.reclaim(queue: queue)
        case .xdp(let d): return try d.reclaim(queue: queue)
        case .verbs(let d): return try d.reclaim(queue: queue)
        }
    }

    public func notificationFD(queue: Int) -> Int32 {
        switch self {
        case .loopback(let d): return d.notificationFD(queue: queue)
        case .sharedMemory(let d): return d.notificationFD(queue: queue)
        case .tap(let d): return d.notificationFD(queue: queue)
        case .xdp(let d): return d.notificationFD(queue: queue)
        case .verbs(let d): return d.notificationFD(queue: queue)
        }
    }

    public func armNotification(queue: Int) throws(NICError) -> Bool {
        switch self {
        case .loopback(let d): return try d.armNotification(queue: queue)
        case .sharedMemory(let d): return try d.armNotification(queue: queue)
        case .tap(let d): return try d.armNotification(queue: queue)
        case .xdp(let d): return try d.armNotification(queue: queue)
        case .verbs(let d): return try d.armNotification(queue: queue)
        }
    }
}
