// NICError.swift: every way opening or driving a NIC queue can fail, each naming the
// problem (the device, the call, the errno) so a CLI can print it as it is.
import Glibc

/// A NICQueues failure. `description` is a complete sentence for the user.
public enum NICError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A device string that does not parse (`tap:`, `xdp:eth0:x`, `ether:eth0`).
    case badSpec(String, reason: String)
    /// The named interface, file or device does not exist.
    case noSuchDevice(String, detail: String)
    /// The operation needs privileges this process lacks (root or CAP_NET_ADMIN/CAP_NET_RAW).
    case permissionDenied(String, detail: String)
    /// ibverbs found no RDMA device; `available` lists the backends that do work here.
    case noRDMADevice(detail: String, available: [String])
    /// A host call failed.
    case system(call: String, errno: Int32, detail: String)
    /// The other end of a shared-memory link exited or closed it.
    case peerGone(String)
    /// Nobody answered in time (a shared-memory link waiting for its peer).
    case timeout(String)
    /// A frame does not fit the buffer it was meant for.
    case frameTooLarge(length: Int, capacity: Int)
    /// The pool has no free buffer.
    case poolExhausted(String)
    /// A queue index outside `0..<queueCount`.
    case invalidQueue(Int, count: Int)
    /// A configuration value the backend cannot use.
    case invalidConfiguration(String)
    /// The shared-memory file or the pcap file is not what it should be.
    case badFile(String, detail: String)

    public var description: String {
        switch self {
        case .badSpec(let s, let reason): return "bad device '\(s)': \(reason)"
        case .noSuchDevice(let d, let detail): return "no device \(d): \(detail)"
        case .permissionDenied(let what, let detail): return "\(what): permission denied (\(detail))"
        case .noRDMADevice(let detail, let available):
            return "ibverbs: \(detail); available backends here: \(available.joined(separator: ", "))"
        case .system(let call, let e, let detail):
            return "\(call)\(detail.isEmpty ? "" : " (\(detail))"): \(String(cString: strerror(e))) (errno \(e))"
        case .peerGone(let what): return "\(what): the peer has gone away"
        case .timeout(let what): return "\(what): timed out"
        case .frameTooLarge(let length, let capacity): return "a \(length)-byte frame does not fit a \(capacity)-byte buffer"
        case .poolExhausted(let what): return "\(what): no free packet buffer"
        case .invalidQueue(let q, let count): return "queue \(q) does not exist (the device has \(count))"
        case .invalidConfiguration(let what): return "invalid configuration: \(what)"
        case .badFile(let path, let detail): return "\(path): \(detail)"
        }
    }

    /// Maps a failed call's errno to the case a user can act on.
    package static func from(call: String, errno e: Int32, subject: String, detail: String = "") -> NICError {
        switch e {
        case EPERM, EACCES:
            return .permissionDenied("\(call) on \(subject)", detail: detail.isEmpty ? "needs root or CAP_NET_ADMIN/CAP_NET_RAW" : detail)
        case ENODEV, ENOENT, ENXIO:
            return .noSuchDevice(subject, detail: detail.isEmpty ? "\(call): \(String(cString: strerror(e)))" : detail)
        default:
            return .system(call: call, errno: e, detail: detail.isEmpty ? subject : "\(subject): \(detail)")
        }
    }
}
