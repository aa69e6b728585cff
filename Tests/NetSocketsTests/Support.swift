// Support.swift: two instances' networks (each with its in-stack loopback) joined by an
// in-process loopback pair at 10.9.0.2 and 10.9.0.9, and helpers that call the socket
// contract with Swift arrays.
import FileSystem
import Glibc
import NICQueues
@testable import NetSockets
import NetStack
import SyscallEmu
import SystemPackage
import UThreads

final class TwoInstances: @unchecked Sendable {
    let runtime: Runtime
    let a: NetStackSocketProvider, b: NetStackSocketProvider

    init() throws {
        let pair = try LoopbackDevice.pair()
        let da = pair.a, db = pair.b
        let ca = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: da.info.mac.raw), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
        let cb = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: db.info.mac.raw), address: try IPv4CIDR(parsing: "10.9.0.9/24"))
        let na = InstanceNetwork(external: try NetworkInterface(device: da, configuration: ca),
                                 loopback: try InstanceNetwork.makeLoopbackInterface())
        let nb = InstanceNetwork(external: try NetworkInterface(device: db, configuration: cb),
                                 loopback: try InstanceNetwork.makeLoopbackInterface())
        runtime = try Runtime(RuntimeConfiguration(kthreads: 2))
        try na.start(on: runtime)
        try nb.start(on: runtime)
        a = NetStackSocketProvider(network: na)
        b = NetStackSocketProvider(network: nb)
    }

    /// Runs `body` on a uthread and waits for it.
    func run<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try runtime.spawn { Result { try body() } }.join().get()
    }

    func stop() {
        for n in [a.network, b.network] {
            n.external?.stop()
            n.loopback.stop()
        }
        runtime.shutdown()
    }
}

let AF_INET = SocketConstants.AF_INET, AF_INET6 = SocketConstants.AF_INET6
let STREAM = SocketConstants.SOCK_STREAM, DGRAM = SocketConstants.SOCK_DGRAM

func v4(_ text: String, _ port: UInt16) -> SyscallEmu.SocketAddress {
    .inet(address: NetStack.IPv4Address(text)!.rawValue, port: port)
}

/// ::ffff:a.b.c.d (or :: for 0.0.0.0), as an AF_INET6 program writes it.
func v6mapped(_ text: String, _ port: UInt16) -> SyscallEmu.SocketAddress {
    let a = NetStack.IPv4Address(text)!
    var bytes = [UInt8](repeating: 0, count: 16)
    if !a.isUnspecified {
        bytes[10] = 0xff; bytes[11] = 0xff
        for i in 0..<4 { bytes[12 + i] = a[i] }
    }
    return .inet6(address: bytes, port: port)
}

/// A printable form of an AF_INET/AF_INET6 address.
func show(_ a: SyscallEmu.SocketAddress) -> String {
    let port = a.port ?? 0
    if a.family == AF_INET, let ip = a.inetAddress { return "\(NetStack.IPv4Address(rawValue: ip)):\(port)" }
    var b: [UInt8] = []
    for i in 8..<24 { b.append(a[i]) }
    if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff {
        return "[::ffff:\(b[12]).\(b[13]).\(b[14]).\(b[15])]:\(port)"
    }
    return b.allSatisfy({ $0 == 0 }) ? "[::]:\(port)" : "[v6]:\(port)"
}

/// The errno a call failed with (0: it succeeded; -1: not an errno).
func errno(_ body: () throws -> Void) -> Int32 {
    do { try body(); return 0 } catch let e as Errno { return e.rawValue } catch { return -1 }
}

@discardableResult
func send(_ h: any SocketHandle, _ bytes: [UInt8], to: SyscallEmu.SocketAddress? = nil, flags: MessageFlags = [],
          nonBlocking: Bool = false) throws(Errno) -> Int {
    try bytes.withUnsafeBytes { raw in
        Result { () throws(Errno) -> Int in
            var b = raw
            return try withUnsafePointer(to: &b) { p throws(Errno) in
                try h.send(UnsafeBufferPointer(start: p, count: 1), to: to, control: [], flags: flags, nonBlocking: nonBlocking)
            }
        }
    }.get()
}

func receive(_ h: any SocketHandle, _ capacity: Int, flags: MessageFlags = [],
             nonBlocking: Bool = false) throws(Errno) -> (ReceivedMessage, [UInt8]) {
    var out = [UInt8](repeating: 0, count: capacity)
    let m = try out.withUnsafeMutableBytes { raw in
        Result { () throws(Errno) -> ReceivedMessage in
            var b = raw
            return try withUnsafePointer(to: &b) { p throws(Errno) in
                try h.receive(into: UnsafeBufferPointer(start: p, count: 1), flags: flags, nonBlocking: nonBlocking,
                              wantAddress: true, controlCapacity: 0)
            }
        }
    }.get()
    return (m, Array(out.prefix(min(m.count, capacity))))
}

func intOption(_ h: any SocketHandle, _ level: Int32, _ name: Int32) throws(Errno) -> Int32 {
    var v: Int32 = -1
    _ = try withUnsafeMutableBytes(of: &v) { b throws(Errno) in try h.getOption(level: level, name: name, into: b) }
    return v
}

func setInt(_ h: any SocketHandle, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
    try withUnsafeBytes(of: value) { b throws(Errno) in try h.setOption(level: level, name: name, value: b) }
}

/// Waits until `h` reports one of `bits`: its readiness observer unparks us (what
/// epoll and poll rely on); false after `seconds`.
func waitReady(_ h: any SocketHandle, _ bits: Readiness, seconds: Int64 = 10) -> Bool {
    let me = UThread.current
    let token = h.addReadinessObserver { _ in me.unpark() }
    defer { h.removeReadinessObserver(token) }
    let deadline = MonotonicInstant.now.advanced(by: .seconds(seconds))
    while true {
        if !h.readiness.intersection(bits).isEmpty { return true }
        if UThread.park(until: deadline) { return !h.readiness.intersection(bits).isEmpty }
    }
}
