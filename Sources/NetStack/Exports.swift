// Exports.swift: `import NetStack` brings the pure protocol layers (NetProtocols: Wire,
// Fragments, the TCP state machine) with the interface and sockets built on them.
@_exported import NetProtocols

/// NICQueuesCore has a MAC address type of its own; `MACAddress` and `NetStack.MACAddress`
/// mean the wire layer's, as before the split.
public typealias MACAddress = NetProtocols.MACAddress
