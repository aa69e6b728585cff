#!/usr/bin/env bash
# profile-app.sh: where a request's time goes under junction. Runs redis-server under
# junction (one kthread, pinned to CPU 1), loads it with redis-benchmark GET (pinned to
# CPU 0) and records the server with `perf record -g`, then prints the top symbols and the
# share of each layer: syscall entry, dispatcher, socket layer, TCP/IP, device, the app,
# the kernel. Documentation/Performance.md ("apps") explains the layers.
#
#   scripts/profile-app.sh [tap|shm] [REQUESTS]     (root; release build of junction)
#
# tap (default): the server behind a TAP, a native client (the server's profile is what
# matters; the kernel's side of the TAP shows as [k]). shm: the client under junction too,
# over a shm link. Everything it makes (TAP, blackhole route, link file, processes) is
# removed on exit, also on Ctrl-C.
set -euo pipefail
way=${1:-tap}
requests=${2:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
junction=$root/.build/release/junction
[[ -x $junction ]] || { echo "build junction first: swift build -c release --product junction" >&2; exit 1; }
for t in perf redis-server redis-benchmark taskset ip; do
    command -v $t >/dev/null || { echo "$t not found (apt-get install linux-perf redis-server redis-tools util-linux iproute2)" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (TAP, route, perf -p)" >&2; exit 1; }

out=$(mktemp -d /tmp/junction-profile-XXXXXX)
n=$(( $$ % 200 + 30 ))
tap=jpf$(( $$ % 100000 ))
subnet=10.219.$n
link=/dev/shm/junction-profile-$$
server=; client=; routed=
cleanup() {
    [[ -n $client ]] && kill "$client" 2>/dev/null || true
    [[ -n $server ]] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    ip link del "$tap" 2>/dev/null || true
    [[ -n $routed ]] && ip route del blackhole "$subnet.0/24" metric 4000 2>/dev/null || true
    rm -f "$link"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

redis=(/usr/bin/redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save '' --appendonly no --io-threads 1 --dir "$out")
if [[ $way == tap ]]; then
    ip route add blackhole "$subnet.0/24" metric 4000 && routed=1
    taskset -c 1 "$junction" --kthreads 1 --net "tap:$tap" --ip "$subnet.2/24" --host-ip "$subnet.1/24" -- "${redis[@]}" >"$out/server.log" 2>&1 &
    server=$!
    for _ in $(seq 200); do ip -o -4 addr show dev "$tap" 2>/dev/null | grep -q "$subnet.1/" && break; sleep 0.05; done
    host=$subnet.2
    run_client() { taskset -c 0 "$@"; }
else
    taskset -c 1 "$junction" --kthreads 1 --net "shm:$link" --ip 10.98.0.2/24 -- "${redis[@]}" >"$out/server.log" 2>&1 &
    server=$!
    host=10.98.0.2
    run_client() { taskset -c 0 "$junction" --kthreads 1 --net "shm:$link" --ip 10.98.0.1/24 -- "$@"; }
fi
sleep 1   # redis-server's start-up under junction; the probe below retries anyway

# The client: wait for the server, store the key GET reads, then load it; the server is
# recorded from the first request to the last.
gcc -O2 -o "$out/probe" "$root/Benchmarks/Programs/probe.c"
run_client "$out/probe" "$host" 6379 20 'SET key:__rand_int__ xxx\r\n' -- \
    /usr/bin/redis-benchmark -h "$host" -p 6379 -c 50 -n "$requests" -t get >"$out/client.log" 2>&1 &
client=$!
for _ in $(seq 400); do grep -q "probe: connected" "$out/client.log" 2>/dev/null && break; sleep 0.05; done
perf record -F 4999 -g -p "$server" -o "$out/perf.data" 2>"$out/perf-record.log" &
perf_pid=$!
wait "$client" || true
client=
kill -INT $perf_pid; wait $perf_pid 2>/dev/null || true
tr '\r' '\n' <"$out/client.log" | grep -E "requests per second|throughput summary" -A0 | tail -2 || true

echo "== top symbols (self) =="
perf report -i "$out/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | cut -c1-160 | head -25 || true
echo "== by layer (self samples) =="
perf report -i "$out/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ {
        p = $1; sub("%", "", p); line = $0
        if (line ~ /\[k\]/) layer = "kernel (host system calls, the TAP and the client side of its TCP)"
        else if (line ~ /cj_syscall_entry|cj_fast_entry|cj_sud|cj_restore_vector|cj_save_vector|sigsys|cj_trap|cj_user_access/) layer = "syscall entry and user-memory access (CJunction)"
        else if (line ~ /SyscallEmu|Dispatcher|cj_dispatch/) layer = "dispatcher, handlers, epoll (SyscallEmu)"
        else if (line ~ /NetSockets/) layer = "socket layer (NetSockets)"
        else if (line ~ /NetStack|NetProtocols/) layer = "TCP/IP (NetStack, NetProtocols)"
        else if (line ~ /NICQueues|cnq_/) layer = "device (NICQueues)"
        else if (line ~ /UThreads|cj_switch|cju_|Preemption/) layer = "uthreads, idle loop, preemption"
        else if (line ~ /FileSystem/) layer = "file layer (FileSystem: descriptors, locks)"
        else if (line ~ /redis|jemalloc/) layer = "the app (redis-server, jemalloc)"
        else if (line ~ /memmove|memcpy|memset/) layer = "libc memmove/memcpy (callers: perf report -g caller)"
        else if (line ~ /libc|ld-linux/) layer = "libc (other)"
        else if (line ~ /libswift|swift_|swift::/) layer = "Swift runtime (retain/release, weak refs)"
        else if (line ~ /vdso/) layer = "clock reads (vdso)"
        else layer = "other"
        sum[layer] += p
    }
    END { for (l in sum) printf "%6.1f%%  %s\n", sum[l], l }' | sort -rn
echo "(perf data and logs: $out)"
