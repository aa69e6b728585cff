// TapSteering.swift: flow-aware steering of a multi-queue TAP shared by the processes of
// a forked instance: each process reads its own queue, and the steering program
// (CNICQueues' tap_steer.c) sends each TCP segment to the process that owns its
// connection, each new connection to a process accepting on its port, the rest to queue 0.
import CNICQueues
import Glibc

/// The steering of one TAP (`cnq_steer`): the eBPF program attached with
/// TUNSETSTEERINGEBPF, its maps, and the queues 1..<``queueCount`` the first process opens
/// at start so that their indices never change (TUN renumbers queues when one detaches;
/// every process keeps every queue's descriptor, so an exit detaches none).
///
/// Shared across fork: the maps are kernel objects and the port masks and the queue table
/// are `MAP_SHARED` mappings, so each process's copy of this object reaches the same
/// state; only ``queue`` (which queue this process reads) differs.
public final class TapSteering: @unchecked Sendable {
    /// Queues of a steered TAP: the first process's and up to seven forked ones.
    public static let queueCount = Int(CNQ_STEER_QUEUES)

    let state: UnsafeMutablePointer<cnq_steer>
    /// The queue this process reads (0: the instance's first process).
    public private(set) var queue = 0
    /// Set once a fork happened: before, every frame goes to queue 0 anyway and nothing
    /// is recorded (no cost for a program that never forks).
    public private(set) var isShared = false

    /// Attaches steering to the TAP whose queue 0 is `queue0FD` and opens its other
    /// queues. Throws with the reason when the kernel cannot (no BPF, no CAP_BPF, a TAP
    /// that is not multi-queue); nothing stays attached then.
    public init(queue0FD: Int32, interfaceName: String) throws(NICError) {
        state = .allocate(capacity: 1)
        var message = [CChar](repeating: 0, count: 512)
        let r = cnq_steer_setup(state, queue0FD, interfaceName, getpid(), &message, message.count)
        guard r == 0 else {
            state.deallocate()
            let why = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .system(call: "TAP steering", errno: -r, detail: why)
        }
    }

    deinit {
        cnq_steer_close(state)
        state.deallocate()
    }

    /// From the first fork on, flows and ARP requests are recorded.
    public func markShared() { isShared = true }

    /// In a forked child: takes a free queue for this process and returns a descriptor of
    /// it that the caller owns (a dup: the inherited one stays, for later forks); nil when
    /// all are taken.
    public func claimQueue() -> Int32? {
        isShared = true
        let q = cnq_steer_claim(state, getpid())
        guard q > 0 else { return nil }
        let fd = fcntl(state.pointee.queueFD(Int(q)), F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { _ = cnq_steer_release_pid(state, getpid()); return nil }
        queue = Int(q)
        return fd
    }

    /// Frees what process `pid` held (its queue, its ports, its flows): it exited.
    public func release(pid: pid_t) { _ = cnq_steer_release_pid(state, pid) }

    /// A pidfd of `pid` (readable once it has exited), or nil.
    public static func exitDescriptor(of pid: pid_t) -> Int32? {
        let fd = cnq_pidfd_open(pid)
        return fd >= 0 ? fd : nil
    }

    /// This process accepts (or no longer accepts) connections on local TCP `port`: new
    /// connections to it may be steered here. An atomic bit in shared memory.
    public func accepting(port: UInt16, _ on: Bool) { cnq_steer_accepting(state, port, Int32(queue), on) }

    /// This process opened a connection to `remote`:`remotePort` from local `localPort`:
    /// its segments come here. Recorded only once the instance has forked.
    public func connecting(remote: UInt32, remotePort: UInt16, localPort: UInt16) {
        guard isShared else { return }
        _ = cnq_steer_flow(state, remote, remotePort, localPort, Int32(queue))
    }

    /// This process sends an ARP request for `ip`: the reply comes here.
    public func resolving(_ ip: UInt32) {
        guard isShared else { return }
        _ = cnq_steer_arp(state, ip, Int32(queue))
    }

    /// The queue the maps give a flow (nil: none recorded; queue 0 then).
    public func queue(ofRemote remote: UInt32, remotePort: UInt16, localPort: UInt16) -> Int? {
        let q = cnq_steer_lookup_flow(state, remote, remotePort, localPort)
        return q < 0 ? nil : Int(q)
    }
}

extension cnq_steer {
    func queueFD(_ q: Int) -> Int32 {
        withUnsafeBytes(of: queue_fds) { $0.load(fromByteOffset: q * MemoryLayout<Int32>.stride, as: Int32.self) }
    }
}
