// SPSCRing.swift: a single-producer/single-consumer descriptor ring in raw memory
// (process-private or shared), with the "doorbell only when the consumer sleeps" protocol.
import CNICQueues

// Layout: producer index, consumer index and the sleep flags on their own cache lines,
// then the entries. Indices run freely and wrap; `index & mask` is the slot.
let ringProducerOffset = 0
let ringConsumerOffset = 64
let ringSleepingOffset = 128
let ringRungOffset = 132
let ringEntriesOffset = 192

/// A descriptor: buffer index (32 bits), data offset (16), length (16).
@inline(__always) func packDescriptor(index: UInt32, start: UInt32, length: UInt32) -> UInt64 {
    UInt64(index) << 32 | UInt64(start & 0xFFFF) << 16 | UInt64(length & 0xFFFF)
}
@inline(__always) func unpackDescriptor(_ d: UInt64) -> (index: UInt32, start: UInt32, length: UInt32) {
    (UInt32(truncatingIfNeeded: d >> 32), UInt32(truncatingIfNeeded: d >> 16) & 0xFFFF, UInt32(truncatingIfNeeded: d) & 0xFFFF)
}

/// A view of a ring someone else's memory holds.
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
    @inline(__always) var rung: UnsafeMutablePointer<UInt32> { (base + ringRungOffset).assumingMemoryBound(to: UInt32.self) }
    @inline(__always) var slots: UnsafeMutablePointer<UInt64> { (base + ringEntriesOffset).assumingMemoryBound(to: UInt64.self) }

    // MARK: producer side

    /// The producer's position and how many slots are free.
    @inline(__always) func reserve() -> (position: UInt32, free: Int) {
        let p = cnq_load_relaxed32(producer)
        let c = cnq_load_acquire32(consumer)
        return (p, Int(capacity &- (p &- c)))
    }

    @inline(__always) func write(_ position: UInt32, _ d: UInt64) { slots[Int(position & (capacity &- 1))] = d }

    /// Publishes entries up to `position`; rings `doorbell` if the consumer sleeps.
    @inline(__always) func publish(_ position: UInt32, doorbell: Int32) {
        cnq_store_release32(producer, position)
        cnq_fence()   // the store above before the read of `sleeping` (pairs with arm())
        if cnq_load_relaxed32(sleeping) != 0 && cnq_exchange32(sleeping, 0) != 0 {
            Host.ring(doorbell)
            cnq_store_release32(rung, 1)   // after the write, so a drain that sees it empties the fd
        }
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

    /// Marks the consumer as about to sleep on `doorbell`. Returns false (and unmarks)
    /// when entries are already waiting.
    func arm(doorbell: Int32) -> Bool {
        // Already armed and nothing arrived: nothing to do (the common idle poll).
        if cnq_load_relaxed32(sleeping) != 0 && available().count == 0 { return true }
        if cnq_load_acquire32(rung) != 0 {
            cnq_store_relaxed32(rung, 0)
            Host.drain(doorbell)
        }
        cnq_store_release32(sleeping, 1)
        cnq_fence()   // the flag before the read of the producer index (pairs with publish())
        if available().count > 0 {
            _ = cnq_exchange32(sleeping, 0)
            return false
        }
        return true
    }
}
