// Exports.swift: `import NetStack` brings the pure protocol layers (NetProtocols: Wire,
// Fragments, the TCP state machine) with the interface and sockets built on them.
@_exported import NetProtocols

/// `NetStack.MACAddress` is the wire layer's MAC address, the same type as
/// `NICQueuesCore.MACAddress` (one type for devices and the stack).
public typealias MACAddress = NetProtocols.MACAddress
