// ISN.swift: initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret), with M a
// clock ticking every 4 µs (RFC 9293 §3.4.1) and F SipHash-2-4 under a random key, so
// ISNs of one 4-tuple advance with time and those of different 4-tuples are unrelated.

public struct ISNGenerator: Sendable {
    /// RFC 9293 §3.4.1's clock: one tick per 4 µs (wraps in about 4.55 hours).
    static let tickNanoseconds: Int64 = 4_000

    let key0: UInt64, key1: UInt64

    /// A generator with a secret from the system's random source (RFC 6528 §3: a secret
    /// chosen at random at boot).
    public init() {
        var rng = SystemRandomNumberGenerator()
        self.init(key0: rng.next(), key1: rng.next())
    }

    /// A generator with a given key (tests).
    public init(key0: UInt64, key1: UInt64) {
        self.key0 = key0
        self.key1 = key1
    }

    public func isn(local: SocketAddress, remote: SocketAddress, now: Int64) -> SequenceNumber {
        var h = SipHash24(key0: key0, key1: key1)
        h.add(local.address.rawValue)
        h.add(local.port)
        h.add(remote.address.rawValue)
        h.add(remote.port)
        let f = UInt32(truncatingIfNeeded: h.finalize())
        let m = UInt32(truncatingIfNeeded: now / Self.tickNanoseconds)
        return SequenceNumber(m &+ f)
    }
}
