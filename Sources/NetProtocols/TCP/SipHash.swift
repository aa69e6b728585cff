// SipHash.swift: SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash behind ISNs
// (RFC 6528) and SYN cookies: a 128-bit secret key, 64-bit output, short inputs fast.

/// SipHash-2-4 over a few 64-bit words, with no allocation.
struct SipHash24 {
    private var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
    /// Bytes absorbed so far (the final block carries the length mod 256).
    private var length = 0
    /// Bytes waiting to fill a 64-bit word.
    private var tail: UInt64 = 0

    init(key0: UInt64, key1: UInt64) {
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
    }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
        v2 &+= v3; v3 = v3.rotl(16); v3 ^= v2
        v0 &+= v3; v3 = v3.rotl(21); v3 ^= v0
        v2 &+= v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
    }

    @inline(__always)
    private mutating func compress(_ m: UInt64) {
        v3 ^= m
        round(); round()
        v0 ^= m
    }

    /// Absorbs `count` bytes of `value`, least significant first (the byte order the
    /// reference implementation reads a little-endian message in).
    mutating func add(_ value: UInt64, bytes count: Int) {
        for i in 0..<count {
            let byte = (value >> UInt64(8 * i)) & 0xFF
            tail |= byte << UInt64(8 * (length & 7))
            length += 1
            if length & 7 == 0 {
                compress(tail)
                tail = 0
            }
        }
    }

    mutating func add(_ value: UInt32) { add(UInt64(value), bytes: 4) }
    mutating func add(_ value: UInt16) { add(UInt64(value), bytes: 2) }
    mutating func add(_ value: UInt64) { add(value, bytes: 8) }

    /// Absorbs raw bytes (the reference test vectors are byte strings).
    mutating func add(bytes: UnsafeRawBufferPointer) {
        for b in bytes { add(UInt64(b), bytes: 1) }
    }

    consuming func finalize() -> UInt64 {
        compress(tail | UInt64(length & 0xFF) << 56)
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotl(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
