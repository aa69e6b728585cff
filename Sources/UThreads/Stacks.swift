// Stacks.swift: uthread stacks: one mapping each, a guard page (a guard region where the
// kernel has them, one host mapping in all) at the bottom and the
// control block at the top, cached per kthread and in a runtime-wide pool for reuse.
import CUThreads
import NUMA
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Layout of one stack mapping: [guard page][usable stack ...][page: cj_uthread control block].
@usableFromInline
struct StackGeometry: Sendable {
    let mapSize: Int
    let guardSize: Int
    /// Offset of the control block from the start of the mapping.
    let controlOffset: Int
    /// The NUMA node stacks are bound to (nil: wherever their pages are first touched).
    let node: NUMANode?

    init(stackSize: Int, node: NUMANode? = nil) {
        self.node = node
        let page = Host.pageSize
        let usable = (max(stackSize, 4 * page) + page - 1) / page * page
        // The control block gets the page above the stack, so the stack is exactly
        // the size asked for (rounded to pages).
        assert(MemoryLayout<cj_uthread>.stride <= page)
        guardSize = page
        mapSize = page + usable + page
        controlOffset = page + usable
    }

    static let madvGuardInstall: Int32 = 102

    /// Maps a fresh stack and returns its control block, zeroed.
    func allocate() -> Result<UT, HostCallError> {
        let mapping: UnsafeMutableRawPointer
        switch Host.mapAnonymous(size: mapSize, protection: PROT_READ | PROT_WRITE,
                                 extraFlags: MAP_NORESERVE | MAP_STACK) {
        case .success(let p): mapping = p
        case .failure(let e): return .failure(e)
        }
        // The guard page as a guard region (MADV_GUARD_INSTALL, Linux 6.13): it faults as a
        // PROT_NONE page would but does not split the mapping, so a stack is one host
        // mapping (and neighbours merge) rather than two: 20,000 threads, each with the
        // program's own stack and guard besides, stay under vm.max_map_count (65530).
        // Older kernels: mprotect.
        if madvise(mapping, guardSize, StackGeometry.madvGuardInstall) != 0 {
            if case .failure(let e) = Host.protect(mapping, size: guardSize, protection: PROT_NONE) {
                Host.unmap(mapping, size: mapSize)
                return .failure(e)
            }
        }
        if let node {
            do { try NUMA.bind(mapping, size: mapSize, to: node) } catch {
                Host.unmap(mapping, size: mapSize)
                if case .host(_, let code) = error { return .failure(HostCallError("mbind", Errno(rawValue: code))) }
                return .failure(HostCallError("mbind", .invalidArgument))
            }
        }
        let t = (mapping + controlOffset).bindMemory(to: cj_uthread.self, capacity: 1)
        t.initialize(to: cj_uthread())
        t.pointee.map_lo = UInt(bitPattern: mapping)
        t.pointee.map_size = UInt(mapSize)
        t.pointee.guard_size = UInt(guardSize)
        t.pointee.timer_index = -1
        return .success(t)
    }

    /// The top of the usable stack (exclusive, 16-byte aligned) for a control block.
    @inline(__always)
    func stackTop(_ t: UT) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(t)
    }

    /// Gives a cached stack's pages back to the host (they read as zero when touched
    /// again); the guard and the control block page stay.
    func discardPages(_ t: UT) {
        let base = UnsafeMutableRawPointer(bitPattern: t.pointee.map_lo)! + guardSize
        _ = madvise(base, controlOffset - guardSize, MADV_DONTNEED)
    }

    func unmap(_ t: UT) {
        Host.unmap(UnsafeMutableRawPointer(bitPattern: t.pointee.map_lo)!, size: Int(t.pointee.map_size))
    }
}
