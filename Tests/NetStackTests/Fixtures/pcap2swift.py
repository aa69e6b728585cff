#!/usr/bin/env python3
# pcap2swift.py: turns a pcap of Ethernet frames into a Swift file of named byte arrays.
import struct, sys

def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), "little-endian pcap expected"
    assert struct.unpack("<I", data[20:24])[0] == 1, "link type must be Ethernet"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        yield data[off + 16: off + 16 + incl]
        off += 16 + incl

def name(f):
    et, off, prefix = struct.unpack("!H", f[12:14])[0], 14, ""
    if et == 0x8100:
        et, off, prefix = struct.unpack("!H", f[16:18])[0], 18, "vlan"
    if et == 0x0806:
        return prefix + ("arpRequest" if f[off + 7] == 1 else "arpReply")
    if et != 0x0800:
        return None
    ihl = (f[off] & 15) * 4
    proto, frag = f[off + 9], struct.unpack("!H", f[off + 6:off + 8])[0]
    fragmented = (frag & 0x3FFF) != 0
    ident = (bytes(f[off + 12:off + 20]), struct.unpack("!H", f[off + 4:off + 6])[0])
    if fragmented and (frag & 0x1FFF) != 0:
        base = firsts.get(ident, prefix + "orphanFragment")
        pieces[base] = pieces.get(base, 1) + 1
        return f"{base}{pieces[base]}"
    l4 = f[off + ihl:]
    if fragmented:
        firsts[ident] = prefix + "fragmented" + {0: "EchoReply", 8: "EchoRequest"}.get(l4[0], "Datagram")
    if proto == 1:
        kind = {0: "echoReply", 8: "echoRequest", 3: "portUnreachable", 11: "timeExceeded"}.get(l4[0], "icmp")
        if fragmented:
            return firsts[ident] + "1"
        return prefix + kind + ("TTL1" if f[off + 8] == 1 else "")
    if proto == 17:
        if struct.unpack("!H", l4[2:4])[0] == 9:
            return prefix + "udpToClosedPort"
        return prefix + ("udpNoChecksum" if l4[6:8] == b"\0\0" else "udp")
    return None

firsts, pieces, used, out = {}, {}, {}, []
for f in frames(sys.argv[1]):
    n = name(f)
    if n is None:
        continue
    used[n] = used.get(n, 0) + 1
    if used[n] > 1:
        n = f"{n}{used[n]}"
    out.append((n, f))

print("// CapturedPackets.swift: Ethernet frames captured from Linux (generated; do not edit).")
print("// Made by Fixtures/capture.sh: two network namespaces joined by a veth pair, tcpdump on")
print("// the receiving end (B, 192.0.2.2, 02:00:00:00:00:0b), A (192.0.2.1, 02:00:00:00:00:0a)")
print("// pinging and sending UDP with iputils ping and python3 sockets, checksum offload off.")
print("enum Captured {")
for n, f in out:
    print(f"    /// {len(f)} bytes.")
    print(f"    static let {n}: [UInt8] = [")
    for i in range(0, len(f), 16):
        print("        " + ", ".join(f"0x{b:02x}" for b in f[i:i + 16]) + ",")
    print("    ]")
print("    /// Every frame above, in capture order, for the fuzz test.")
print("    static let all: [(name: String, bytes: [UInt8])] = [")
for n, _ in out:
    print(f"        (\"{n}\", {n}),")
print("    ]")
print("}")
