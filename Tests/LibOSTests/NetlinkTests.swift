// NetlinkTests.swift: NETLINK_ROUTE under junction. Tests/Programs/netlink.c's protocol
// checks print what they print natively both with the host's netlink (the default) and
// with the instance's (--net tap:...); getifaddrs(), if_nameindex() and python3's
// socket.if_nameindex() report the instance's interfaces (lo and the TAP) under --net.
import Foundation
import Testing
import TestSupport

@Suite("NETLINK_ROUTE under junction", .serialized, .timeLimit(.minutes(2)))
struct NetlinkTests {
    @Test("netlink.c's protocol checks: the host's netlink under junction, as natively")
    func protocolOnTheHost() throws {
        let prog = try Junction.compile("netlink", [], as: "netlink")
        try Junction.same(prog, ["proto"])
    }

    @Test("netlink.c's protocol checks: the instance's netlink under --net, as natively",
          .enabled(if: runningAsRoot, "needs root: creates a TAP interface and routes"))
    func protocolOnNetStack() throws {
        let prog = try Junction.compile("netlink", [], as: "netlink-netstack")
        let native = try Junction.run(prog, ["proto"])
        let tap = try JunctionOnTap([prog, "proto"])
        defer { _ = tap.finish() }
        #expect(tap.process.wait(seconds: 30) == native.status, "\(tap.process.output)")
        #expect(tap.process.output == native.stdout + native.stderr, "native:\n\(native)\njunction --net:\n\(tap.process.output)")
    }

    @Test("getifaddrs and if_nameindex report lo and the instance's TAP address under --net",
          .enabled(if: runningAsRoot, "needs root: creates a TAP interface and routes"))
    func interfacesOfTheInstance() throws {
        let prog = try Junction.compile("netlink", [], as: "netlink-addrs")
        let tap = try JunctionOnTap([prog, "addrs"])
        defer { _ = tap.finish() }
        #expect(tap.process.wait(seconds: 30) == 0, "\(tap.process.output)")
        let expected = """
            lo packet index 1 halen 6
            \(tap.name) packet index 2 halen 6
            lo inet 127.0.0.1 mask 255.0.0.0 brd - up 1 loopback 1
            \(tap.name) inet \(tap.instance) mask 255.255.255.0 brd \(tap.subnet).255 up 1 loopback 0
            if_nameindex 1 lo
            if_nameindex 2 \(tap.name)

            """
        #expect(tap.process.output == expected)
    }

    @Test("python3's socket.if_nameindex() under --net",
          .enabled(if: runningAsRoot && hasPython3, "needs root and python3"))
    func pythonInterfaceIndex() throws {
        let tap = try JunctionOnTap(["/usr/bin/python3", "-c", "import socket; print(socket.if_nameindex())"])
        defer { _ = tap.finish() }
        #expect(tap.process.wait(seconds: 30) == 0, "\(tap.process.output)")
        #expect(tap.process.output == "[(1, 'lo'), (2, '\(tap.name)')]\n")
    }
}
