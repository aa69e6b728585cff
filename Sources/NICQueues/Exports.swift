// Exports.swift: `import NICQueues` brings the core (pools, devices, loopback, shm, TAP,
// faults, pcap) and every backend, with DeviceSpec opening any of them from a string.
@_exported import NICQueuesCore
@_exported import NICQueuesVerbs
@_exported import NICQueuesXDP
