// DeviceSpecTests.swift: device strings, good and bad, and the ibverbs backend's clear
// answer on a machine without an RDMA device.
import Foundation
import NICQueues
import TestSupport
import Testing

@Suite struct DeviceSpecTests {
    @Test(arguments: [
        ("loopback", DeviceSpec.loopback),
        ("shm:/dev/shm/link", .sharedMemory(path: "/dev/shm/link")),
        ("shm:rel:ative", .sharedMemory(path: "rel:ative")),
        ("tap:jtap0", .tap(name: "jtap0", queues: 1)),
        ("tap:jtap0:4", .tap(name: "jtap0", queues: 4)),
        ("xdp:veth0", .xdp(interface: "veth0", queue: 0)),
        ("xdp:eth1:3", .xdp(interface: "eth1", queue: 3)),
        ("verbs:mlx5_0", .verbs(device: "mlx5_0")),
    ])
    func parses(text: String, spec: DeviceSpec) throws {
        #expect(try DeviceSpec(parsing: text) == spec)
    }

    @Test(arguments: [
        ("", "empty device string; expected loopback, shm:PATH, tap:NAME[:QUEUES], xdp:IFNAME[:QUEUE] or verbs:DEVICE"),
        ("ether:eth0", "unknown device kind 'ether'; expected loopback, shm:PATH, tap:NAME[:QUEUES], xdp:IFNAME[:QUEUE] or verbs:DEVICE"),
        ("loopback:1", "loopback takes no argument"),
        ("shm:", "shm needs a file path, e.g. shm:/dev/shm/junction-link"),
        ("tap:", "tap needs an interface name, e.g. tap:jtap0"),
        ("tap:averyveryverylongname", "'averyveryverylongname' is not an interface name (1 to 15 characters, no '/' or space)"),
        ("tap:t0:0", "a TAP device has 1 to 64 queues"),
        ("xdp:eth0:x", "queue 'x' is not a number from 0 to 4095"),
        ("xdp:eth0:-1", "queue '-1' is not a number from 0 to 4095"),
        ("verbs:", "verbs needs an RDMA device name, e.g. verbs:mlx5_0"),
    ])
    func rejects(text: String, reason: String) {
        #expect(throws: NICError.badSpec(text, reason: reason)) { try DeviceSpec(parsing: text) }
    }

    @Test func roundTrips() throws {
        for s in ["loopback", "shm:/x", "tap:a", "tap:a:2", "xdp:v:1", "verbs:mlx5_1"] {
            #expect(try DeviceSpec(parsing: s).description == (s == "xdp:v:1" ? s : s))
        }
    }

    @Test func openingLoopbackWorks() throws {
        let d = try DeviceSpec(parsing: "loopback").open()
        try transmitFrames(d, [numberedFrame(1, size: 64, from: d.info.mac)])
        #expect(try receiveFrames(d, count: 1).count == 1)
        #expect(d.info.backend == "loopback")
    }

    @Test func verbsWithoutAnRDMADeviceSaysSo() throws {
        try #require(VerbsDevice.deviceNames().isEmpty, "this machine has an RDMA device")
        do {
            _ = try DeviceSpec(parsing: "verbs:mlx5_0").open()
            Issue.record("opened an RDMA device on a machine without one")
        } catch {
            guard case .noRDMADevice(let detail, let available) = error else { Issue.record("wrong error: \(error)"); return }
            #expect(detail.hasPrefix("no RDMA device found"))
            #expect(available.contains("loopback") && available.contains("shm:PATH"))
            #expect(error.description.contains("available backends here: loopback, shm:PATH"))
        }
        // The same, as a program sees it.
        let r = try runProcess(siblingExecutable("nic-peer"), ["info", "verbs:mlx5_0"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("nic-peer: ibverbs: no RDMA device found"))
    }

    @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root to drop to an unprivileged user"))
    func missingPrivilegesAreClearErrors() throws {
        let tap = uniqueName("jnqp")
        for (spec, message) in [
            ("tap:\(tap)", "nic-peer: tap:\(tap): permission denied (creating or attaching a TAP interface needs root or CAP_NET_ADMIN)\n"),
            ("xdp:lo", "nic-peer: xdp:lo: permission denied (AF_XDP and loading XDP programs need root"),
            ("shm:/root/jnq-link", "nic-peer: shm:/root/jnq-link: permission denied (cannot create the link file"),
        ] {
            let r = try runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                                                        siblingExecutable("nic-peer"), "info", spec])
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix(message), "\(r)")
        }
    }

    @Test func missingDevicesAreClearErrors() throws {
        #expect(throws: NICError.noSuchDevice("jnq-none1", detail: "no such network interface")) {
            _ = try DeviceSpec(parsing: "xdp:jnq-none1").open()
        }
    }
}
