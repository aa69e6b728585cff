// NetDNSTests.swift: name resolution under `junction --net tap:... --dns H`: python3's
// resolver (glibc's) sends its queries over the instance's own stack to a tiny DNS
// responder the test runs on the TAP's host address (and nowhere else); /etc/hosts
// still answers first.
import Foundation
import Testing
import TestSupport

/// A one-zone DNS responder: A 10.1.2.3 for test.junction.example, NXDOMAIN for the rest.
private let responder = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 15, 1)   # IP_FREEBIND: the TAP's address appears when junction starts
s.bind((sys.argv[1], 53))
s.settimeout(60)
print('ready', flush=True)
while True:
    try: q, peer = s.recvfrom(512)
    except socket.timeout: break
    tid = struct.unpack('!H', q[:2])[0]
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    qtype = struct.unpack('!H', q[i + 1:i + 3])[0]
    name = '.'.join(labels).lower()
    known = name == 'test.junction.example'
    answer = b''
    if known and qtype == 1:
        answer = b'\\xc0\\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + socket.inet_aton('10.1.2.3')
    header = struct.pack('!HHHHHH', tid, 0x8180 | (0 if known else 3), 1, 1 if answer else 0, 0, 0)
    s.sendto(header + q[12:i + 5] + answer, peer)
    print('query', name, qtype, peer[0], flush=True)
"""

private let client = """
import socket
print(socket.gethostbyname('test.junction.example'))
try: socket.gethostbyname('nosuch.junction.example')
except socket.gaierror as e: print('nosuch', e.errno == socket.EAI_NONAME)
print(socket.gethostbyname('localhost'))
print(open('/etc/resolv.conf').read().split('\\n')[1])
"""

@Suite("name resolution under junction --net --dns", .timeLimit(.minutes(2)))
struct NetDNSTests {
    @Test("python3 resolves through --dns over the instance's stack",
          .enabled(if: runningAsRoot && hasPython3, "needs root (a TAP) and python3"))
    func resolverOverTheInstanceStack() throws {
        // The host side's address is known before junction creates the TAP: the
        // responder binds it first (IP_FREEBIND) so the instance's first query finds it.
        let allocated = JunctionOnTap.allocate()
        let subnet = allocated.subnet
        let dns = try ChildProcess(["/usr/bin/python3", "-c", responder, "\(subnet).1"])
        defer { _ = dns.stop() }
        let ready = Date().addingTimeInterval(20)
        while !dns.output.contains("ready") && dns.poll() == nil && Date() < ready { usleep(20_000) }
        #expect(dns.output.contains("ready"), "responder: \(dns.output)")
        let tap = try JunctionOnTap(["/usr/bin/python3", "-c", client], options: ["--dns", "\(subnet).1"], allocated: allocated)
        defer { _ = tap.finish() }
        #expect(tap.process.wait(seconds: 40) == 0, "\(tap.process.output)\nresponder: \(dns.output)")
        #expect(tap.process.output == "10.1.2.3\nnosuch True\n127.0.0.1\nnameserver \(subnet).1\n",
                "responder: \(dns.output)")
        #expect(dns.output.contains("query test.junction.example 1 \(subnet).2"), "\(dns.output)")
    }

    @Test func badDNSOptionIsRefused() throws {
        let r = try runProcess(siblingExecutable("junction"), ["--dns", "not-an-address", "--", "/bin/true"])
        #expect(r.status != 0 && r.stderr.contains("--dns 'not-an-address' is not an IPv4 address"), "\(r)")
    }
}
