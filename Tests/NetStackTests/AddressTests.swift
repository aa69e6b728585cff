// AddressTests.swift: MAC and IPv4 address parsing and printing, IPv4 against glibc's
// inet_pton/inet_ntop.
import Glibc
import NetStack
import PropertyBased
import Testing

@Suite("Wire: addresses")
struct AddressTests {
    @Test("IPv4: printing and parsing round-trip, and agree with inet_ntop")
    func ipv4RoundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint32()) { raw in
            let address = IPv4Address(rawValue: raw)
            #expect(IPv4Address(address.description) == address)
            var addr = in_addr(s_addr: raw.bigEndian)
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            let printed = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(address.description == printed)
        }
    }

    @Test("IPv4: accepts exactly what inet_pton accepts", arguments: [
        "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3",
        "", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "1.2.3.4.", "1.2.3.0x4", "192.000.2.1", "0.0.0.00",
    ])
    func ipv4LikeInetPton(text: String) {
        var addr = in_addr()
        let kernel = inet_pton(AF_INET, text, &addr) == 1 ? IPv4Address(rawValue: UInt32(bigEndian: addr.s_addr)) : nil
        #expect(IPv4Address(text) == kernel, "\(text)")
    }

    @Test("IPv4: random strings of digits and dots, like inet_pton")
    func ipv4Random() async {
        let alphabet = Array("0123456789.")
        await propertyCheck(count: 2000, input: Gen.int(in: 0...10).array(of: 0...16)) { picks in
            let text = String(picks.map { alphabet[$0] })
            var addr = in_addr()
            let kernel = inet_pton(AF_INET, text, &addr) == 1 ? IPv4Address(rawValue: UInt32(bigEndian: addr.s_addr)) : nil
            #expect(IPv4Address(text) == kernel, "\(text)")
        }
    }

    @Test("IPv4: classes")
    func ipv4Classes() {
        #expect(IPv4Address("224.0.0.1")!.isMulticast && !IPv4Address("223.255.255.255")!.isMulticast)
        #expect(IPv4Address.broadcast.isBroadcast && IPv4Address.any.isUnspecified)
        #expect(IPv4Address("127.9.9.9")!.isLoopback && IPv4Address("169.254.3.4")!.isLinkLocal)
        #expect(IPv4Address(192, 0, 2, 1)[3] == 1 && IPv4Address(192, 0, 2, 1).rawValue == 0xC000_0201)
    }

    @Test("MAC: parsing and printing")
    func mac() async {
        #expect(MACAddress("02:00:00:00:00:0a") == macA)
        #expect(MACAddress("02-00-00-00-00-0A") == macA)
        #expect(MACAddress("2:0:0:0:0:a") == macA)
        for bad in ["02:00:00:00:00", "02:00:00:00:00:0a:01", "0200.0000.000a", "02:00:00:00:00:0g",
                    "02:00-00:00:00:0a", "002:00:00:00:00:0a", "02::00:00:00:0a", ":02:00:00:00:00", ""] {
            #expect(MACAddress(bad) == nil, "\(bad)")
        }
        #expect(macA.description == "02:00:00:00:00:0a" && MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        #expect(MACAddress.broadcast.isBroadcast && MACAddress.broadcast.isMulticast)
        #expect(MACAddress("01:00:5e:00:00:01")!.isMulticast && macA.isUnicast && macA.isLocallyAdministered)
        await propertyCheck(count: 300, input: Gen.uint64(in: 0...0xFFFF_FFFF_FFFF)) { raw in
            let m = MACAddress(rawValue: raw)
            #expect(MACAddress(m.description) == m)
        }
    }
}
