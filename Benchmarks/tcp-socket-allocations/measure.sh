#!/usr/bin/env bash
# measure.sh: checks under valgrind that a TCP request/response round through NetStack's
# sockets and interface (write, output, loopback device, input, demultiplexing, the
# connection, timers, read, on both ends) allocates nothing: the heap allocation count
# is the same for 100 rounds as for 5,000 (about 6 segments a round).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --target NetStack >/dev/null
out=.build/tcp-socket-allocations
maps=()
for m in .build/release/{CJunction,CUThreads,CNICQueues,CXDP,CVerbs}.build/module.modulemap .build/release/CNICQueues.build/module.modulemap \
         .build/checkouts/swift-system/Sources/CSystem/include/module.modulemap Sources/CNUMA/module.modulemap; do
    maps+=(-Xcc "-fmodule-map-file=$m")
done
objects=(.build/release/{NetStack,NetProtocols,NICQueuesCore,NICQueuesXDP,NICQueuesVerbs,NICQueues,UThreads,CUThreads,NUMA,Logging,CNICQueues,CXDP,CVerbs,CJunction,SystemPackage,CSystem,HeapModule,InternalCollectionsUtilities}.build/*.o)
swiftc -O -I .build/release/Modules "${maps[@]}" Benchmarks/tcp-socket-allocations/main.swift "${objects[@]}" \
    -lxdp -lbpf -libverbs -lnuma -o "$out"
objcopy --strip-debug "$out"   # valgrind cannot read the toolchain's DWARF 5
"$out" 1000 || { echo "the probe failed"; exit 1; }
allocs() { valgrind "$out" "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
few=$(allocs 100) many=$(allocs 5000)
echo "heap allocations: $few for 100 TCP rounds, $many for 5000"
diff=$(( many > few ? many - few : few - many ))
[ "$diff" -le 2 ] && echo "per-segment allocations: none" || { echo "extra allocations: $(( many - few )) over 4900 rounds"; exit 1; }
