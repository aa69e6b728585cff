#!/usr/bin/env bash
# capture.sh: regenerates CapturedPackets.swift from a real Linux exchange (run as root).
# Two network namespaces joined by a veth pair (192.0.2.1 <-> 192.0.2.2, TEST-NET-1,
# never routed off this machine); B forwards 192.0.4.0/24 back out of its veth, so a
# TTL-1 ping from A makes B answer "time exceeded". (This container has no 8021q
# module: the tests make 802.1Q frames by inserting a tag into captured ones.)
# Checksum offload is off on both ends, so the captured UDP checksums are the real ones.
# Needs: iproute2, iputils-ping, ethtool, tcpdump, python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
A=nwcapA B=nwcapB
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cleanup; work="$(mktemp -d)"
ip netns add $A; ip netns add $B
ip link add va netns $A type veth peer name vb netns $B
ip -n $A link set va address 02:00:00:00:00:0a
ip -n $B link set vb address 02:00:00:00:00:0b
for ns in $A $B; do ip -n $ns link set lo up; done
ip netns exec $A ethtool -K va tx off rx off >/dev/null
ip netns exec $B ethtool -K vb tx off rx off >/dev/null
ip -n $A addr add 192.0.2.1/24 dev va; ip -n $A link set va up
ip -n $B addr add 192.0.2.2/24 dev vb; ip -n $B link set vb up
ip -n $B route add 192.0.4.0/24 dev vb
ip netns exec $B sysctl -qw net.ipv4.ip_forward=1
ip -n $A route add 192.0.4.0/24 via 192.0.2.2
sleep 1
ip netns exec $B tcpdump -i vb -U -w "$work/cap.pcap" -s 0 2>/dev/null &
dump=$!
sleep 1
# 1. ARP + small echo, 2. fragmented echo (3000 bytes of data).
ip netns exec $A ping -c1 -s 56 -p 4a756e6374696f6e 192.0.2.2 >/dev/null
ip netns exec $A ping -c1 -s 3000 -M dont 192.0.2.2 >/dev/null
# 4. UDP to a listener, with and without a checksum (SO_NO_CHECK), and to a closed port.
ip netns exec $B python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.2", 5353)); s.settimeout(5)
for _ in range(2): s.recvfrom(2048)
PY
listener=$!
sleep 0.5
ip netns exec $A python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.1", 40000))
s.sendto(b"hello, wire\n", ("192.0.2.2", 5353))
n = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); n.bind(("192.0.2.1", 40001))
n.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: send a zero UDP checksum
n.sendto(b"no checksum", ("192.0.2.2", 5353))
time.sleep(0.2)
s.sendto(b"anyone?", ("192.0.2.2", 9))   # closed port: ICMP port unreachable
time.sleep(0.2)
PY
wait $listener
# 5. TTL 1 through B: B answers "time exceeded".
ip netns exec $A ping -c1 -t 1 -W 1 192.0.4.9 >/dev/null || true
sleep 1
kill $dump; wait $dump 2>/dev/null || true
python3 "$here/pcap2swift.py" "$work/cap.pcap" > "$here/../CapturedPackets.swift"
echo "wrote $(grep -c 'static let' "$here/../CapturedPackets.swift") packets"
