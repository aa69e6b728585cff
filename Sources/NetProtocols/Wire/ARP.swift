// ARP.swift: ARP for IPv4 over Ethernet (RFC 826), the only kind this stack speaks.

/// ARP operation codes.
public struct ARPOperation: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public static var request: ARPOperation { ARPOperation(rawValue: 1) }
    @inlinable public static var reply: ARPOperation { ARPOperation(rawValue: 2) }
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet, checked once.
public struct ARPPacketView {
    enum Offset {
        static let hardwareType = 0, protocolType = 2, hardwareLength = 4, protocolLength = 5
        static let operation = 6, senderHardware = 8, senderProtocol = 14
        static let targetHardware = 18, targetProtocol = 24, end = 28
    }
    static let ethernetHardware: UInt16 = 1

    /// The 28 bytes of the packet (Ethernet padding after it excluded).
    public let bytes: UnsafeRawBufferPointer

    /// Checks the fixed part, that the packet is Ethernet/IPv4, and the operation.
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Offset.senderHardware else { throw .truncated }
        guard bytes.u16(Offset.hardwareType) == Self.ethernetHardware else { throw .unsupportedHardwareType }
        guard bytes.u16(Offset.protocolType) == EtherType.ipv4.rawValue else { throw .unsupportedProtocolType }
        guard bytes.u8(Offset.hardwareLength) == 6, bytes.u8(Offset.protocolLength) == 4 else {
            throw .badAddressLength
        }
        guard bytes.count >= Offset.end else { throw .truncated }
        let op = bytes.u16(Offset.operation)
        guard op == ARPOperation.request.rawValue || op == ARPOperation.reply.rawValue else {
            throw .unsupportedOperation
        }
        self.bytes = bytes.slice(0, Offset.end)
    }

    public var operation: ARPOperation { ARPOperation(rawValue: bytes.u16(Offset.operation)) }
    public var senderHardwareAddress: MACAddress { MACAddress(bytes, at: Offset.senderHardware) }
    public var senderProtocolAddress: IPv4Address { IPv4Address(bytes, at: Offset.senderProtocol) }
    public var targetHardwareAddress: MACAddress { MACAddress(bytes, at: Offset.targetHardware) }
    public var targetProtocolAddress: IPv4Address { IPv4Address(bytes, at: Offset.targetProtocol) }
}

/// An Ethernet/IPv4 ARP packet as a value.
public struct ARPPacket: Hashable, Sendable {
    public var operation: ARPOperation
    public var senderHardwareAddress: MACAddress
    public var senderProtocolAddress: IPv4Address
    public var targetHardwareAddress: MACAddress
    public var targetProtocolAddress: IPv4Address

    /// Always 28.
    @inlinable public static var length: Int { 28 }

    public init(operation: ARPOperation, senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
                targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    public init(_ view: ARPPacketView) {
        operation = view.operation
        senderHardwareAddress = view.senderHardwareAddress
        senderProtocolAddress = view.senderProtocolAddress
        targetHardwareAddress = view.targetHardwareAddress
        targetProtocolAddress = view.targetProtocolAddress
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> ARPPacket {
        ARPPacket(try ARPPacketView(validating: bytes))
    }

    /// Writes the 28 bytes at the start of `buffer`.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        typealias O = ARPPacketView.Offset
        guard buffer.count >= Self.length else { throw .bufferTooSmall }
        buffer.put(ARPPacketView.ethernetHardware, at: O.hardwareType)
        buffer.put(EtherType.ipv4.rawValue, at: O.protocolType)
        buffer.put(UInt8(6), at: O.hardwareLength)
        buffer.put(UInt8(4), at: O.protocolLength)
        buffer.put(operation.rawValue, at: O.operation)
        senderHardwareAddress.write(to: buffer, at: O.senderHardware)
        senderProtocolAddress.write(to: buffer, at: O.senderProtocol)
        targetHardwareAddress.write(to: buffer, at: O.targetHardware)
        targetProtocolAddress.write(to: buffer, at: O.targetProtocol)
        return Self.length
    }
}
