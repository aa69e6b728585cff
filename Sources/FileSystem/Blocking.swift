// Blocking.swift: how a file operation waits: a uthread parks (its kthread runs others);
// an OS thread outside any runtime sleeps on a futex. Waiters re-check their condition
// after every wake-up.
import CUThreads
import UThreads

/// One waiting party, registered under the owner's lock and woken after it drops it.
struct Waiter: @unchecked Sendable {
    enum Kind {
        case uthread(UThreadRef)
        case thread(UnsafeMutablePointer<UInt32>)
    }
    let kind: Kind
    let id: Int

    func wake() {
        switch kind {
        case .uthread(let u): u.unpark()
        case .thread(let word):
            cj_store_release_u32(word, 1)
            _ = cj_futex_wake(word, 1)
        }
    }
}

/// A list of waiters for one condition (e.g. "pipe has data").
final class WaitList: @unchecked Sendable {
    private var waiters: [Waiter] = []
    private var nextID = 0

    /// Registers the caller; call with the owner's lock held. Returns what `block`
    /// needs.
    func enroll() -> Waiter {
        nextID += 1
        let w: Waiter
        if UThread.isInUThread {
            w = Waiter(kind: .uthread(UThread.current), id: nextID)
        } else {
            let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
            word.initialize(to: 0)
            w = Waiter(kind: .thread(word), id: nextID)
        }
        waiters.append(w)
        return w
    }

    /// Takes every waiter (owner's lock held); wake them after unlocking.
    func takeAll() -> [Waiter] {
        defer { waiters.removeAll(keepingCapacity: true) }
        return waiters
    }

    /// Forgets a waiter that stopped waiting (owner's lock held).
    func withdraw(_ w: Waiter) { waiters.removeAll { $0.id == w.id } }

    /// Blocks until woken (or spuriously); call without the owner's lock.
    static func block(_ w: Waiter) {
        switch w.kind {
        case .uthread:
            UThread.park()
        case .thread(let word):
            while cj_load_acquire_u32(word) == 0 { _ = cj_futex_wait(word, 0, -1) }
            word.deallocate()
        }
    }
}

extension WaitList {
    /// Whether the calling uthread was interrupted (a signal for its application
    /// thread): blocking calls then end with EINTR. Always false on OS threads.
    static func interrupted() -> Bool { UThread.isInUThread && UThread.takeInterrupt() }
}

extension Array where Element == Waiter {
    func wakeAll() { for w in self { w.wake() } }
}
