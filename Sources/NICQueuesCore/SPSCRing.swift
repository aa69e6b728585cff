// SPSCRing.swift: a single-producer/single-consumer descriptor ring in raw memory
// (process-private or shared), with the "doorbell only when the consumer sleeps" protocol.
import CNICQueues

// Layout: producer index, consumer index and the sleep flag on their own cache lines,
// then the entries. Indices run freely and wrap; `index & mask` is the slot. The
// consumer's line also holds its private doorbell bookkeeping (`armed`, `owed`), which
// only the consumer reads or writes.
let ringProducerOffset = 0
let ringConsumerOffset = 64
let ringArmedOffset = 68
let ringOwedOffset = 72
let ringSleepingOffset = 128
let ringEntriesOffset = 192

/// A descriptor: buffer index (32 bits), data offset (16), length (16).
@inline(__always) func packDescriptor(index: UInt32, start: UInt32, length: UInt32) -> UInt64 {
    UInt64(index) << 32 | UInt64(start & 0xFFFF) << 16 | UInt64(length & 0xFFFF)
}
@inline(__always) func unpackDescriptor(_ d: UInt64) -> (index: UInt32, start: UInt32, length: UInt32) {
    (UInt32(truncatingIfNeeded: d >> 32), UInt32(truncatingIfNeeded: d >> 16) & 0xFFFF, UInt32(truncatingIfNeeded: d) & 0xFFFF)
}

/// A view of a ring someone else's memory holds.
///
/// The doorbell protocol. The consumer *arms* before it sleeps: it sets `sleeping`, then
/// re-checks the ring (a full fence between the two). The producer publishes entries,
/// then (a full fence) takes the flag with an exchange and rings the consumer's eventfd
/// iff it took it: one ring per arm taken, never a ring for an unarmed consumer, and no
/// lost wake-up (one of the two sees the other's store). The consumer drains the eventfd
/// itself, and must drain exactly the rings it is owed: a ring left in the eventfd makes
/// the consumer's epoll return at once, forever, with nothing to receive (the kthread
/// spins on its core; under load it then runs only in its turn, milliseconds apart). So
/// the consumer counts the arms the producer took (`owed`) and drains until it has read
/// that many rings: a ring still on its way (the producer took the flag but its write has
/// not landed) is drained by the first arm after it lands, which is at most one spurious
/// wake-up later.
struct SPSCRing {
    let base: UnsafeMutableRawPointer
    let capacity: UInt32

    static func byteCount(capacity: Int) -> Int { ringEntriesOffset + 8 * capacity }

    /// Formats fresh memory as an empty ring (`capacity` a power of two).
    static func format(_ base: UnsafeMutableRawPointer, capacity: Int) -> SPSCRing {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount(capacity: capacity))
        return SPSCRing(base: base, capacity: UInt32(capacity))
    }

    @inline(__always) var producer: UnsafeMutablePointer<UInt32> { (base + ringProducerOffset).assumingMemoryBound(to: UInt32.self) }
    @inline(__always) var consumer: UnsafeMutablePointer<UInt32> { (base + ringConsumerOffset).assumingMemoryBound(to: UInt32.self) }
    @inline(__always) var sleeping: UnsafeMutablePointer<UInt32> { (base + ringSleepingOffset).assumingMemoryBound(to: UInt32.self) }
    @inline(__always) var slots: UnsafeMutablePointer<UInt64> { (base + ringEntriesOffset).assumingMemoryBound(to: UInt64.self) }
    /// Consumer-private: 1 while the consumer's arm stands (it set `sleeping` and has not
    /// yet seen the flag cleared).
    @inline(__always) var armed: UnsafeMutablePointer<UInt32> { (base + ringArmedOffset).assumingMemoryBound(to: UInt32.self) }
    /// Consumer-private: rings the producer owes or made (arms it took) not yet drained.
    @inline(__always) var owed: UnsafeMutablePointer<UInt32> { (base + ringOwedOffset).assumingMemoryBound(to: UInt32.self) }

    // MARK: producer side

    /// The producer's position and how many slots are free.
    @inline(__always) func reserve() -> (position: UInt32, free: Int) {
        let p = cnq_load_relaxed32(producer)
        let c = cnq_load_acquire32(consumer)
        return (p, Int(capacity &- (p &- c)))
    }

    @inline(__always) func write(_ position: UInt32, _ d: UInt64) { slots[Int(position & (capacity &- 1))] = d }

    /// Publishes entries up to `position`; rings `doorbell` if the consumer is armed.
    @inline(__always) func publish(_ position: UInt32, doorbell: Int32) {
        if advance(position) { Host.ring(doorbell) }
    }

    /// The first half of ``publish(_:doorbell:)``: publishes entries up to `position` and
    /// takes the consumer's arm. True when it took it: the caller must then ring the
    /// consumer's doorbell once.
    @inline(__always) func advance(_ position: UInt32) -> Bool {
        cnq_store_release32(producer, position)
        cnq_fence()   // the store above before the read of `sleeping` (pairs with arm())
        return cnq_load_relaxed32(sleeping) != 0 && cnq_exchange32(sleeping, 0) != 0
    }

    // MARK: consumer side

    /// The consumer's position and how many entries wait.
    @inline(__always) func available() -> (position: UInt32, count: Int) {
        let c = cnq_load_relaxed32(consumer)
        let p = cnq_load_acquire32(producer)
        return (c, Int(p &- c))
    }

    @inline(__always) func read(_ position: UInt32) -> UInt64 { slots[Int(position & (capacity &- 1))] }

    @inline(__always) func release(_ position: UInt32) { cnq_store_release32(consumer, position) }

    /// Arms the consumer's doorbell before it sleeps: afterwards the producer's next
    /// publish rings `doorbell`, and `doorbell` holds no earlier ring. Returns false (and
    /// disarms) when entries are already waiting. Cheap when already armed and idle (the
    /// common idle poll): loads only.
    func arm(doorbell: Int32) -> Bool {
        if armed.pointee != 0 {
            if cnq_load_acquire32(sleeping) != 0 {
                // Our arm stands. Rings of earlier arms may still be landing: drain them.
                if owed.pointee != 0 { settle(doorbell) }
                if available().count == 0 { return true }
                disarm()
                return false
            }
            // The producer took our arm: its ring is in the eventfd or on its way.
            armed.pointee = 0
            owed.pointee &+= 1
        }
        if owed.pointee != 0 { settle(doorbell) }
        armed.pointee = 1
        cnq_store_release32(sleeping, 1)
        cnq_fence()   // the flag before the read of the producer index (pairs with advance())
        if available().count > 0 {
            disarm()
            return false
        }
        return true
    }

    /// Withdraws a standing arm (entries arrived); a producer that took it first owes a ring.
    private func disarm() {
        if cnq_exchange32(sleeping, 0) == 0 { owed.pointee &+= 1 }
        armed.pointee = 0
    }

    /// Reads the rings that have landed (eventfd counts add up) off what is owed.
    private func settle(_ doorbell: Int32) {
        let got = Host.drainCount(doorbell)
        owed.pointee = got >= UInt64(owed.pointee) ? 0 : owed.pointee &- UInt32(truncatingIfNeeded: got)
    }
}
