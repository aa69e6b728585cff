#!/usr/bin/env bash
# measure.sh: builds NetStack in release and the driver beside it, prints the per-frame
# figures, and checks under valgrind that heap allocations do not grow with the number
# of frames (the per-packet receive and emit paths allocate nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --target NetStack >/dev/null
out=.build/netstack-allocations
# The driver uses only Wire/, but NetStack's objects come whole (release builds spread
# specialisations across them), with what its other layers import: NICQueues, UThreads,
# their C shims and swift-system, and the C libraries behind them.
maps=()
for m in .build/release/CJunction.build/module.modulemap .build/release/CNICQueues.build/module.modulemap \
         .build/checkouts/swift-system/Sources/CSystem/include/module.modulemap; do
    maps+=(-Xcc "-fmodule-map-file=$m")
done
objects=$(ls .build/release/{NetStack,NICQueues,UThreads,CNICQueues,CJunction,SystemPackage,CSystem}.build/*.o)
swiftc -O -I .build/release/Modules "${maps[@]}" Benchmarks/netstack-allocations/main.swift $objects \
    -lxdp -lbpf -libverbs -o "$out"
objcopy --strip-debug "$out"   # valgrind cannot read the toolchain's DWARF 5
"$out" 1000000
allocs() { valgrind "$out" "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
few=$(allocs 10) many=$(allocs 100000)
echo "heap allocations: $few for 10 frames, $many for 100000 frames"
[ "$few" = "$many" ] && echo "per-frame allocations: none" || { echo "per-frame allocations: $(( (many - few) / 99990 ))"; exit 1; }
