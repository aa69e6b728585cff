// NUMA.swift: NUMA nodes through libnuma: which exist, binding a mapping's pages to a node,
// placing the calling thread on a node; without NUMA support only node 0 exists, and
// binding and placement on it change nothing.
import CNUMA

#if canImport(Glibc)
import Glibc
#endif

/// A NUMA node that exists on this machine (checked when made).
public struct NUMANode: Sendable, Hashable, CustomStringConvertible {
    public let index: Int

    /// The node numbered `index`; `NUMAError.noSuchNode` when this machine has none.
    public init(_ index: Int) throws(NUMAError) {
        guard NUMA.nodes.contains(index) else { throw .noSuchNode(index, existing: NUMA.nodes) }
        self.index = index
    }

    public var description: String { "node \(index)" }
}

/// Why a NUMA request failed.
public enum NUMAError: Error, Equatable, CustomStringConvertible {
    /// The node does not exist (EINVAL from the kernel's point of view).
    case noSuchNode(Int, existing: [Int])
    /// A libnuma or kernel call failed with this errno.
    case host(String, Int32)

    public var description: String {
        switch self {
        case let .noSuchNode(n, existing):
            "NUMA node \(n) does not exist (Invalid argument): this machine has node\(existing.count == 1 ? "" : "s") \(existing.map(String.init).joined(separator: ", "))"
        case let .host(what, code): "\(what): \(String(cString: strerror(code)))"
        }
    }
}

/// The machine's NUMA topology and the placement calls.
public enum NUMA {
    /// libnuma works here (the kernel has NUMA support); false on a kernel without it,
    /// where node 0 stands for the whole machine.
    public static let isAvailable: Bool = numa_available() >= 0

    /// The nodes this process may allocate memory on, ascending (at least node 0).
    public static let nodes: [Int] = {
        guard isAvailable, let allowed = numa_get_mems_allowed() else { return [0] }
        defer { numa_bitmask_free(allowed) }
        let found = (0...Int(numa_max_node())).filter { numa_bitmask_isbitset(allowed, UInt32($0)) != 0 }
        return found.isEmpty ? [0] : found
    }()

    /// More than one node: placement can matter.
    public static var isMultiNode: Bool { nodes.count > 1 }

    /// Asks the kernel to place the pages of `[start, start+size)` on `node` (preferred,
    /// so memory pressure falls back to another node instead of failing), moving pages
    /// already touched. `start` must be page-aligned.
    public static func bind(_ start: UnsafeMutableRawPointer, size: Int, to node: NUMANode) throws(NUMAError) {
        guard isAvailable else { return }
        var mask = nodeMask(node)
        let rc = mbind(start, UInt(size), MPOL_PREFERRED, &mask, UInt(mask.count * 64 + 1), UInt32(MPOL_MF_MOVE))
        if rc != 0 { throw .host("mbind(\(node))", errno) }
    }

    /// Restricts the calling thread to `node`'s CPUs and makes the node its preferred
    /// place for new memory (a kthread placed on a node).
    public static func runCurrentThread(on node: NUMANode) throws(NUMAError) {
        guard isAvailable else { return }
        if numa_run_on_node(Int32(node.index)) != 0 { throw .host("numa_run_on_node(\(node.index))", errno) }
        numa_set_preferred(Int32(node.index))
    }

    /// Runs `body` with the calling thread's new memory preferring `node` (memory the
    /// kernel allocates for the thread too, e.g. io_uring rings), then restores the
    /// thread's policy to the default (local) one. Nil: `body` alone.
    public static func withPreferred<T, E: Error>(_ node: NUMANode?, _ body: () throws(E) -> T) throws(E) -> T {
        guard isAvailable, let node else { return try body() }
        var mask = nodeMask(node)
        let set = set_mempolicy(MPOL_PREFERRED, &mask, UInt(mask.count * 64 + 1)) == 0
        defer { if set { _ = set_mempolicy(MPOL_DEFAULT, nil, 0) } }
        return try body()
    }

    /// The node holding the page at `address` (touched already), or nil if unknown.
    public static func node(of address: UnsafeRawPointer) -> Int? {
        guard isAvailable else { return 0 }
        var node: Int32 = -1
        let rc = get_mempolicy(&node, nil, 0, UnsafeMutableRawPointer(mutating: address), UInt32(MPOL_F_NODE | MPOL_F_ADDR))
        return rc == 0 && node >= 0 ? Int(node) : nil
    }

    /// The CPUs of `node`, ascending (every CPU without NUMA support).
    public static func cpus(of node: NUMANode) -> [Int] {
        guard isAvailable, let mask = numa_allocate_cpumask() else {
            return (0..<Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))).map { $0 }
        }
        defer { numa_free_cpumask(mask) }
        guard numa_node_to_cpus(Int32(node.index), mask) == 0 else { return [] }
        return bits(mask)
    }

    /// The CPUs the calling thread may run on now (its affinity), ascending.
    public static func allowedCPUsOfCurrentThread() -> [Int] {
        guard let mask = numa_allocate_cpumask() else { return [] }
        defer { numa_free_cpumask(mask) }
        guard numa_sched_getaffinity(0, mask) >= 0 else { return [] }
        return bits(mask)
    }

    private static func bits(_ mask: UnsafeMutablePointer<bitmask>) -> [Int] {
        (0..<Int(mask.pointee.size)).filter { numa_bitmask_isbitset(mask, UInt32($0)) != 0 }
    }

    /// One bit per node, `node`'s set (libnuma's and the kernel's nodemask layout).
    private static func nodeMask(_ node: NUMANode) -> [UInt] {
        var mask = [UInt](repeating: 0, count: node.index / 64 + 1)
        mask[node.index / 64] = 1 << UInt(node.index % 64)
        return mask
    }
}
