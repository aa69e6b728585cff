#!/usr/bin/env bash
# measure-interface.sh: checks under valgrind that a UDP round trip through NetStack's
# Interface and Sockets layers (send, output, loopback device, input, socket queue,
# receive, on both ends) allocates nothing: the heap allocation count is the same for
# 100 round trips as for 10,000. Uses junction-bench's hidden allocation probe.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product junction-bench >/dev/null
# A copy without debug info: valgrind cannot read the toolchain's DWARF 5.
bench=$(mktemp /tmp/junction-bench-probe.XXXXXX)
trap 'rm -f "$bench"' EXIT
objcopy --strip-debug "$(swift build -c release --show-bin-path)/junction-bench" "$bench"
allocs() { valgrind "$bench" udp --allocation-probe "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
few=$(allocs 100) many=$(allocs 10000)
echo "heap allocations: $few for 100 UDP round trips, $many for 10000"
# Start-up varies by a couple of allocations from run to run (random seeds, the runtime's
# caches); one allocation per packet would add 19,800.
diff=$(( many > few ? many - few : few - many ))
[ "$diff" -le 2 ] && echo "per-packet allocations: none" || { echo "per-round-trip allocations: $(( (many - few) / 9900 ))"; exit 1; }
