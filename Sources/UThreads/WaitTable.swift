// WaitTable.swift: an address-keyed wait table, the futex of the library OS: wait on a
// 32-bit word if it holds an expected value, wake by address and bitset, requeue.
import CUThreads
import Synchronization

/// How a `WaitTable.wait` ended.
public enum WaitResult: Sendable, Equatable {
    /// A wake or requeue-then-wake reached this waiter.
    case woken
    /// The word did not hold the expected value (futex's EAGAIN).
    case valueMismatch
    /// The deadline passed (futex's ETIMEDOUT).
    case timedOut
    /// `UThreadRef.interrupt()` ended the wait (futex's EINTR).
    case interrupted
}

/// Waiters keyed by the address of a 32-bit word, in hashed buckets with one spin lock
/// each, the way Linux's futex hash works.
public final class WaitTable: @unchecked Sendable {
    // Tunables: buckets (a power of two); more buckets, fewer unrelated waiters share a lock.
    public static let defaultBucketCount = 256

    /// Matches every waiter (FUTEX_BITSET_MATCH_ANY).
    public static let matchAny: UInt32 = 0xFFFF_FFFF

    private let buckets: UnsafeMutablePointer<LockedWaitQueue>
    private let mask: Int

    public init(bucketCount: Int = WaitTable.defaultBucketCount) {
        require(bucketCount > 0 && bucketCount & (bucketCount - 1) == 0, "WaitTable bucket count must be a power of two")
        buckets = .allocate(capacity: bucketCount)
        for i in 0..<bucketCount { (buckets + i).initialize(to: LockedWaitQueue()) }
        mask = bucketCount - 1
    }

    deinit {
        buckets.deinitialize(count: mask + 1)
        buckets.deallocate()
    }

    @inline(__always)
    private func bucket(_ address: UnsafeRawPointer) -> UnsafeMutablePointer<LockedWaitQueue> {
        var h = UInt64(UInt(bitPattern: address)) >> 2
        h = (h ^ (h >> 17)) &* 0xED5A_D4BB
        return buckets + Int(truncatingIfNeeded: h ^ (h >> 11)) & mask
    }

    /// Parks the calling uthread on `address` if the word there equals `expected`
    /// (checked under the bucket lock, so a wake after the store cannot be missed).
    /// - Parameters:
    ///   - address: a 4-byte aligned word.
    ///   - expected: the value the word must hold for the uthread to wait.
    ///   - deadline: when to give up (CLOCK_MONOTONIC); nil waits forever.
    ///   - bitset: wakes with a disjoint bitset pass this waiter by (nonzero).
    public func wait(on address: UnsafePointer<UInt32>, expected: UInt32,
                     deadline: MonotonicInstant? = nil, bitset: UInt32 = WaitTable.matchAny) -> WaitResult {
        require(bitset != 0, "WaitTable.wait: bitset must be nonzero")
        let (t, _) = UThread.currentControl("WaitTable.wait")
        let b = bucket(UnsafeRawPointer(address))
        b.pointee.lock.lock()
        if cj_load_acquire_u32(address) != expected {
            b.pointee.lock.unlock()
            return .valueMismatch
        }
        t.pointee.granted = 0
        t.pointee.wait_bitset = bitset
        cj_store_release_ptr(keySlot(t), UnsafeMutableRawPointer(mutating: address))
        b.pointee.queue.pointee.append(t)
        b.pointee.lock.unlock()

        while cj_load_acquire_u8(&t.pointee.granted) == 0 {
            if cj_exchange_u8(&t.pointee.interrupted, 0) != 0 {
                if leaveOnTimeout(t) { return .interrupted }
                continue  // a wake got there first
            }
            guard let deadline else {
                Scheduler.park(t, KT.currentFast)
                continue
            }
            if Scheduler.park(t, KT.currentFast, until: deadline.nanoseconds) || cj_monotonic_ns() >= deadline.nanoseconds {
                if leaveOnTimeout(t) { return .timedOut }
            }
        }
        return .woken
    }

    /// A timed-out (or interrupted) waiter removes itself from whichever bucket it is in now (a requeue
    /// may have moved it). Returns false if a wake got to it first.
    private func leaveOnTimeout(_ t: UT) -> Bool {
        while true {
            guard let key = cj_load_acquire_ptr(keySlot(t)) else { return false }
            let b = bucket(UnsafeRawPointer(key))
            b.pointee.lock.lock()
            if t.pointee.granted != 0 {
                b.pointee.lock.unlock()
                return false
            }
            if cj_load_acquire_ptr(keySlot(t)) != key {  // requeued meanwhile: try again
                b.pointee.lock.unlock()
                continue
            }
            b.pointee.queue.pointee.remove(t)
            cj_store_release_ptr(keySlot(t), nil)
            b.pointee.lock.unlock()
            return true
        }
    }

    /// Wakes up to `count` waiters on `address` whose bitset intersects `bitset`.
    /// Returns how many it woke.
    @discardableResult
    public func wake(_ address: UnsafeRawPointer, count: Int, bitset: UInt32 = WaitTable.matchAny) -> Int {
        if count <= 0 { return 0 }
        let b = bucket(address)
        var wake = WakeList()
        b.pointee.lock.lock()
        var cursor = b.pointee.queue.pointee.head
        while let w = cursor, wake.count < count {
            cursor = w.pointee.wait_next
            if w.pointee.wait_key == address, w.pointee.wait_bitset & bitset != 0 {
                grant(w, from: b)
                wake.push(w)
            }
        }
        b.pointee.lock.unlock()
        let n = wake.count
        wake.wakeAll()
        return n
    }

    /// Wakes up to `wakeCount` waiters on `from` and moves up to `requeueCount` of the
    /// rest to wait on `to` (FUTEX_REQUEUE). With `expected`, first checks that `from`
    /// holds it (FUTEX_CMP_REQUEUE) and returns nil if not. Returns woken + moved.
    public func requeue(from: UnsafePointer<UInt32>, to: UnsafeRawPointer, wakeCount: Int, requeueCount: Int,
                        expected: UInt32? = nil) -> Int? {
        let src = bucket(UnsafeRawPointer(from)), dst = bucket(to)
        // Lock in address order so two opposite requeues cannot deadlock.
        if src == dst {
            src.pointee.lock.lock()
        } else if src < dst {
            src.pointee.lock.lock(); dst.pointee.lock.lock()
        } else {
            dst.pointee.lock.lock(); src.pointee.lock.lock()
        }
        func unlockBoth() {
            src.pointee.lock.unlock()
            if src != dst { dst.pointee.lock.unlock() }
        }
        if let expected, cj_load_acquire_u32(from) != expected {
            unlockBoth()
            return nil
        }
        var wake = WakeList()
        var moved = 0
        var cursor = src.pointee.queue.pointee.head
        while let w = cursor {
            cursor = w.pointee.wait_next
            guard w.pointee.wait_key == UnsafeRawPointer(from) else { continue }
            if wake.count < wakeCount {
                grant(w, from: src)
                wake.push(w)
            } else if moved < requeueCount {
                if src != dst {
                    src.pointee.queue.pointee.remove(w)
                    dst.pointee.queue.pointee.append(w)
                }
                cj_store_release_ptr(keySlot(w), UnsafeMutableRawPointer(mutating: to))
                moved += 1
            } else {
                break
            }
        }
        unlockBoth()
        let woken = wake.count
        wake.wakeAll()
        return woken + moved
    }

    /// Waiters currently queued on `address` (for tests and /proc-style reporting).
    public func waiterCount(_ address: UnsafeRawPointer) -> Int {
        let b = bucket(address)
        b.pointee.lock.lock()
        defer { b.pointee.lock.unlock() }
        var n = 0
        var cursor = b.pointee.queue.pointee.head
        while let w = cursor {
            if w.pointee.wait_key == address { n += 1 }
            cursor = w.pointee.wait_next
        }
        return n
    }

    @inline(__always)
    private func grant(_ w: UT, from b: UnsafeMutablePointer<LockedWaitQueue>) {
        b.pointee.queue.pointee.remove(w)
        cj_store_release_ptr(keySlot(w), nil)
        cj_store_release_u8(&w.pointee.granted, 1)
    }

    @inline(__always)
    private func keySlot(_ t: UT) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        UnsafeMutableRawPointer(t.pointer(to: \.wait_key)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
}
