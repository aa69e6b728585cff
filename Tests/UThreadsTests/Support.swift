// Support.swift: small fixtures shared by the UThreads tests.
import UThreads
import Synchronization

/// Mutable state shared between uthreads; the test's own synchronisation protects it.
final class Shared<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A 32-bit word at a stable address, for wait-table tests.
final class Word: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt32>
    init(_ v: UInt32 = 0) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: v)
    }
    deinit { pointer.deallocate() }
    var value: UInt32 {
        get { UnsafeAtomic(pointer).load() }
        set { UnsafeAtomic(pointer).store(newValue) }
    }
}

/// Atomic store/load on a raw word.
struct UnsafeAtomic {
    let p: UnsafeMutablePointer<UInt32>
    init(_ p: UnsafeMutablePointer<UInt32>) { self.p = p }
    func load() -> UInt32 {
        UnsafeMutableRawPointer(p).withMemoryRebound(to: Atomic<UInt32>.self, capacity: 1) { $0.pointee.load(ordering: .acquiring) }
    }
    func store(_ v: UInt32) {
        UnsafeMutableRawPointer(p).withMemoryRebound(to: Atomic<UInt32>.self, capacity: 1) { $0.pointee.store(v, ordering: .releasing) }
    }
}

/// Runs `body` as a uthread on a fresh runtime and returns its result.
func inRuntime<T>(kthreads: Int = 2, placement: WakePlacement = .waker, _ body: @escaping @Sendable () -> T) -> T {
    try! Runtime.run(RuntimeConfiguration(kthreads: kthreads, wakePlacement: placement), body)
}
