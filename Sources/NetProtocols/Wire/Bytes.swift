// Bytes.swift: big-endian loads and stores at fixed offsets, the Wire layer's only raw
// memory access. Callers have checked the bounds (a view validates once at init).

extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    package func u8(_ offset: Int) -> UInt8 { self[offset] }

    @inlinable @inline(__always)
    package func u16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    package func u32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The bytes from `start` to `end`, a view into the same memory.
    @inlinable @inline(__always)
    package func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[start..<end])
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable @inline(__always)
    package func put(_ value: UInt8, at offset: Int) { self[offset] = value }

    @inlinable @inline(__always)
    package func put(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable @inline(__always)
    package func put(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inlinable @inline(__always)
    package func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[start..<end])
    }
}
