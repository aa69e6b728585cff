// FaultInjector.swift: a wrapper over any device that drops, duplicates, reorders,
// corrupts, delays and rate-limits frames, from a seeded generator (reproducible), with
// counters of every fault it caused.
import Glibc
import UThreads

/// What to do to frames, and to which.
public struct FaultConfiguration: Sendable, Equatable {
    /// Seeds the generator: the same seed and the same frames give the same faults.
    public var seed: UInt64 = 1
    /// Probabilities, each drawn per frame.
    public var drop: Double = 0
    public var duplicate: Double = 0
    /// Held back and sent after the next frame.
    public var reorder: Double = 0
    /// One bit flipped at a random position.
    public var corrupt: Double = 0
    /// Every frame is held this long.
    public var delay: Duration = .zero
    /// At most this many frames per second (token bucket, burst of 32); the rest dropped.
    public var rateLimit: Int? = nil
    /// Faults apply to transmitted frames, received frames, or both.
    public var onTransmit = true
    public var onReceive = false
    public init(seed: UInt64 = 1) { self.seed = seed }
}

/// What the injector did.
public struct FaultStatistics: Sendable, Equatable {
    public var frames: UInt64 = 0
    public var dropped: UInt64 = 0
    public var duplicated: UInt64 = 0
    public var reordered: UInt64 = 0
    public var corrupted: UInt64 = 0
    public var delayed: UInt64 = 0
    public var rateLimited: UInt64 = 0
    public init() {}
}

/// xoshiro256** seeded through SplitMix64: fast, and the same on every platform.
struct Xoshiro {
    var s: (UInt64, UInt64, UInt64, UInt64)
    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }
    mutating func next() -> UInt64 {
        let r = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return r
    }
    /// True with probability p.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) * 0x1.0p-53 < p }
}

/// One direction's state on one queue: the generator, held frames, counters.
final class FaultLane {
    var rng: Xoshiro
    var stats = FaultStatistics()
    /// Frames ready to go on (to the device, or to the caller).
    var ready: PacketBatch
    /// Frames waiting out the delay, with their due times (same order).
    var delayed: PacketBatch
    let due: UnsafeMutablePointer<Int64>
    var dueHead = 0
    /// The frame held back for reordering, and whether it was held in an earlier call.
    var held: PacketBatch
    var heldOld = false
    var tokens: Double
    var lastRefill: Int64
    /// What the device handed over, before the faults (receive lanes).
    var incoming = PacketBatch(capacity: 32)

    init(seed: UInt64, capacity: Int) {
        rng = Xoshiro(seed: seed)
        ready = PacketBatch(capacity: capacity)
        delayed = PacketBatch(capacity: capacity)
        due = .allocate(capacity: capacity)
        held = PacketBatch(capacity: 1)
        tokens = 32
        lastRefill = MonotonicInstant.now.nanoseconds
    }
    deinit { due.deallocate() }
}

/// Frames in flight inside an injector per lane (ready + delayed).
let faultLaneCapacity = 4096

/// Wraps a device and applies ``FaultConfiguration`` to its frames.
public struct FaultInjector<Base: NetworkDevice & ~Copyable>: ~Copyable, NetworkDevice {
    public let base: Base
    public let configuration: FaultConfiguration
    let tx: [FaultLane]
    let rx: [FaultLane]
    let delayNanos: Int64

    public init(wrapping base: consuming Base, configuration: FaultConfiguration) throws(NICError) {
        for p in [configuration.drop, configuration.duplicate, configuration.reorder, configuration.corrupt] where !(0...1).contains(p) {
            throw .invalidConfiguration("fault probability \(p) is not between 0 and 1")
        }
        if let r = configuration.rateLimit, r <= 0 { throw .invalidConfiguration("rate limit \(r) frames/s") }
        let q = base.info.queueCount
        // Each lane has its own stream, derived from the seed, so lanes do not disturb each other.
        tx = (0..<q).map { FaultLane(seed: configuration.seed &+ UInt64($0) &* 2, capacity: faultLaneCapacity) }
        rx = (0..<q).map { FaultLane(seed: configuration.seed &+ UInt64($0) &* 2 &+ 1, capacity: faultLaneCapacity) }
        delayNanos = max(0, configuration.delay.nanosecondsSaturated)
        self.base = base
        self.configuration = configuration
    }

    public var info: DeviceInfo {
        var i = base.info
        i.backend = "faults(\(i.backend))"
        return i
    }
    public var pool: PacketPool { base.pool }
    public var statistics: DeviceStatistics { base.statistics }

    /// What the injector did to transmitted and to received frames (all queues).
    public var faultStatistics: (transmit: FaultStatistics, receive: FaultStatistics) {
        func sum(_ lanes: [FaultLane]) -> FaultStatistics {
            lanes.reduce(into: FaultStatistics()) { a, l in
                a.frames += l.stats.frames; a.dropped += l.stats.dropped; a.duplicated += l.stats.duplicated
                a.reordered += l.stats.reordered; a.corrupted += l.stats.corrupted; a.delayed += l.stats.delayed
                a.rateLimited += l.stats.rateLimited
            }
        }
        return (sum(tx), sum(rx))
    }

    /// Runs one frame through the faults into the lane's ready (or delayed) frames.
    func apply(_ frame: consuming PacketBuffer, _ lane: FaultLane, now: Int64) {
        let c = configuration
        lane.stats.frames += 1
        if let rate = c.rateLimit {
            lane.tokens = min(32, lane.tokens + Double(now &- lane.lastRefill) * Double(rate) / 1e9)
            lane.lastRefill = now
            if lane.tokens < 1 { lane.stats.rateLimited += 1; return }
            lane.tokens -= 1
        }
        // Four draws per frame, always, so one fault's setting does not shift the others.
        let dropIt = lane.rng.chance(c.drop), corruptIt = lane.rng.chance(c.corrupt)
        let duplicateIt = lane.rng.chance(c.duplicate), reorderIt = lane.rng.chance(c.reorder)
        if dropIt { lane.stats.dropped += 1; return }
        if corruptIt && frame.length > 0 {
            let bit = Int(lane.rng.next() % UInt64(frame.length * 8))
            frame.withUnsafeMutableBytes { $0[bit / 8] ^= UInt8(1 << (bit % 8)) }
            lane.stats.corrupted += 1
        }
        var copy: PacketBuffer? = nil
        if duplicateIt, lane.ready.freeSpace + lane.delayed.freeSpace > 2 {
            copy = try? base.pool.allocate(copying: UnsafeRawBufferPointer(start: frame.unsafeData, count: frame.length))
            if copy != nil { lane.stats.duplicated += 1 }
        }
        if reorderIt && lane.held.isEmpty {
            lane.held.append(frame)
            lane.heldOld = false
            lane.stats.reordered += 1
        } else {
            emit(frame, lane, now: now)
        }
        if let d = copy.take() { emit(d, lane, now: now) }
        // A frame held back goes out after the one that overtook it.
        if reorderIt == false, !lane.held.isEmpty, let h = lane.held.popFirst() { emit(h, lane, now: now) }
    }

    func emit(_ frame: consuming PacketBuffer, _ lane: FaultLane, now: Int64) {
        if delayNanos > 0 {
            if lane.delayed.isFull { lane.stats.dropped += 1; return }
            lane.due[(lane.dueHead + lane.delayed.count) % faultLaneCapacity] = now &+ delayNanos
            lane.delayed.append(frame)
            lane.stats.delayed += 1
        } else {
            if lane.ready.isFull { lane.stats.dropped += 1; return }
            lane.ready.append(frame)
        }
    }

    /// Moves frames whose delay is over to ready; lets go of a frame held since an earlier call.
    func release(_ lane: FaultLane, now: Int64) {
        if !lane.held.isEmpty {
            if lane.heldOld, let h = lane.held.popFirst() { emit(h, lane, now: now) } else { lane.heldOld = true }
        }
        while !lane.delayed.isEmpty, lane.due[lane.dueHead] <= now, !lane.ready.isFull, let f = lane.delayed.popFirst() {
            lane.dueHead = (lane.dueHead + 1) % faultLaneCapacity
            lane.ready.append(f)
        }
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        if q < 0 || q >= tx.count { throw .invalidQueue(q, count: tx.count) }   // not `info`: it builds a string
        guard configuration.onTransmit else { return try base.transmit(queue: q, from: &batch) }
        let lane = tx[q]
        let now = MonotonicInstant.now.nanoseconds
        var taken = 0
        while lane.ready.freeSpace > 2 && lane.delayed.freeSpace > 2, let f = batch.popFirst() {
            apply(f, lane, now: now)
            taken += 1
        }
        release(lane, now: now)
        if !lane.ready.isEmpty { _ = try base.transmit(queue: q, from: &lane.ready) }
        return taken
    }

    public func reclaim(queue q: Int) throws(NICError) -> Int {
        if q < 0 || q >= tx.count { throw .invalidQueue(q, count: tx.count) }   // not `info`: it builds a string
        if configuration.onTransmit {
            let lane = tx[q]
            release(lane, now: MonotonicInstant.now.nanoseconds)
            if !lane.ready.isEmpty { _ = try base.transmit(queue: q, from: &lane.ready) }
        }
        return try base.reclaim(queue: q)
    }

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        if q < 0 || q >= tx.count { throw .invalidQueue(q, count: tx.count) }   // not `info`: it builds a string
        guard configuration.onReceive else { return try base.receive(queue: q, into: &batch, limit: limit) }
        let lane = rx[q]
        let now = MonotonicInstant.now.nanoseconds
        _ = try base.receive(queue: q, into: &lane.incoming, limit: min(32, lane.ready.freeSpace - 2, lane.delayed.freeSpace - 2))
        while let f = lane.incoming.popFirst() { apply(f, lane, now: now) }
        release(lane, now: now)
        var n = 0
        while n < limit, !batch.isFull, let f = lane.ready.popFirst() {
            batch.append(f)
            n += 1
        }
        return n
    }

    public func notificationFD(queue: Int) -> Int32 { base.notificationFD(queue: queue) }

    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        if q < 0 || q >= tx.count { throw .invalidQueue(q, count: tx.count) }   // not `info`: it builds a string
        // Frames inside the injector (held, delayed, ready) need polling, not sleep.
        let lane = rx[q], out = tx[q]
        if !lane.ready.isEmpty || !lane.delayed.isEmpty || !lane.held.isEmpty || !out.delayed.isEmpty || !out.held.isEmpty || !out.ready.isEmpty { return false }
        return try base.armNotification(queue: q)
    }
}
