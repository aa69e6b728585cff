// NUMATests.swift: the NUMA layer on this machine: node 0 exists, memory bound to it and
// kthreads placed on it land there, a node that does not exist is refused by name, and
// junction --numa-node does the same from the command line.
import Foundation
import NICQueuesCore
import NUMA
import TestSupport
import Testing
import UThreads

@Suite("NUMA placement", .timeLimit(.minutes(2)))
struct NUMATests {
    static var missingNode: Int { (NUMA.nodes.max() ?? 0) + 1 }

    @Test("node 0 exists; the node past the last is refused with EINVAL's text and the nodes there are")
    func nodes() throws {
        #expect(NUMA.nodes.first == 0)
        #expect(try NUMANode(0).index == 0)
        #expect(throws: NUMAError.noSuchNode(Self.missingNode, existing: NUMA.nodes)) { try NUMANode(Self.missingNode) }
        #expect(throws: NUMAError.self) { try NUMANode(-1) }
        let text = NUMAError.noSuchNode(Self.missingNode, existing: NUMA.nodes).description
        #expect(text.contains("NUMA node \(Self.missingNode) does not exist (Invalid argument)") && text.contains("node"), "\(text)")
    }

    @Test("a packet pool on node 0 has its pages there")
    func poolOnNode() throws {
        let node = try NUMANode(0)
        let pool = try PacketPool(name: "numa-test", bufferSize: 2048, count: 64, numaNode: node)
        #expect(NUMA.node(of: pool.regionBase) == 0)
        #expect(NUMA.node(of: pool.regionBase + pool.regionSize - 1) == 0)
    }

    @Test("a runtime on node 0 runs its kthreads on the node's CPUs and its uthread stacks on the node")
    func runtimeOnNode() throws {
        let node = try NUMANode(0)
        var config = RuntimeConfiguration(kthreads: 2)
        config.numaNode = node
        let runtime = try Runtime(config)
        defer { runtime.shutdown() }
        let nodeCPUs = Set(NUMA.cpus(of: node))
        let handles = (0..<2).map { k in
            runtime.spawn(on: k) { () -> (cpus: [Int], stackNode: Int?) in
                var local = 7
                let stackNode = withUnsafeMutablePointer(to: &local) { NUMA.node(of: $0) }
                return (NUMA.allowedCPUsOfCurrentThread(), stackNode)
            }
        }
        for h in handles {
            let r = h.join()
            #expect(!r.cpus.isEmpty && Set(r.cpus).isSubset(of: nodeCPUs), "kthread CPUs \(r.cpus), node 0's \(nodeCPUs.sorted())")
            #expect(r.stackNode == 0)
        }
    }

    @Test("junction --numa-node 0 runs the program as natively; a missing node exits 2 naming it")
    func commandLine() throws {
        let native = try runProcess("/bin/busybox", ["echo", "on", "node"])
        let ours = try runProcess(Junction.binary, ["--numa-node", "0", "--", "/bin/busybox", "echo", "on", "node"])
        #expect(ours == native, "native:\n\(native)\njunction:\n\(ours)")
        let bad = try runProcess(Junction.binary, ["--numa-node", String(Self.missingNode), "--", "/bin/true"])
        #expect(bad.status == 2, "\(bad)")
        #expect(bad.stderr.contains("NUMA node \(Self.missingNode) does not exist"), "\(bad)")
    }
}
