#!/usr/bin/env bash
# measure.sh: builds NetStack in release and the TCP driver beside it, prints the cost per
# segment, and checks under valgrind that heap allocations do not grow with the number of
# segments (TCPConnection's input, output, timers and buffers allocate nothing per segment).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --target NetStack >/dev/null
out=.build/tcp-allocations
maps=()
for m in .build/release/{CJunction,CUThreads,CNICQueues,CXDP,CVerbs}.build/module.modulemap .build/release/CNICQueues.build/module.modulemap \
         .build/checkouts/swift-system/Sources/CSystem/include/module.modulemap Sources/CNUMA/module.modulemap; do
    maps+=(-Xcc "-fmodule-map-file=$m")
done
# (an array: some object names have spaces; HeapModule is NetStack's timer heap)
objects=(.build/release/{NetStack,NetProtocols,NICQueuesCore,NICQueuesXDP,NICQueuesVerbs,NICQueues,UThreads,CUThreads,NUMA,Logging,CNICQueues,CXDP,CVerbs,CJunction,SystemPackage,CSystem,HeapModule,InternalCollectionsUtilities}.build/*.o)
swiftc -O -I .build/release/Modules "${maps[@]}" Benchmarks/tcp-allocations/main.swift "${objects[@]}" \
    -lxdp -lbpf -libverbs -lnuma -o "$out"
objcopy --strip-debug "$out"   # valgrind cannot read the toolchain's DWARF 5
"$out" 200000
allocs() { valgrind "$out" "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
few=$(allocs 100) many=$(allocs 5000)
echo "heap allocations: $few for 100 rounds, $many for 5000 rounds (about 24 segments a round)"
[ "$few" = "$many" ] && echo "per-segment allocations: none" || { echo "extra allocations: $(( many - few ))"; exit 1; }
