#!/usr/bin/env bash
# deps.sh: installs what building and testing Junction needs on a fresh Debian machine
# (as root), skipping what is already there. Sourced by run.sh and test.sh.
set -euo pipefail

JUNCTION_APT_PACKAGES=(
    build-essential pkg-config
    libibverbs-dev libnuma-dev liburing-dev
    libxdp-dev libbpf-dev
    tshark
    busybox-static
    iproute2 procps
    golang-go
    python3
    redis-server    # UnixRedisTests (redis-server --unixsocket), NetTapTests (--net tap:...), junction-bench apps
    redis-tools     # redis-cli -s and over TAP, redis-benchmark over TAP and in junction-bench apps
    memcached       # NetTapTests: memcached under junction --net tap:...; junction-bench apps
    libmemcached-tools  # memcaslap/memcslap, to cross-check junction-bench apps' memcached load (Benchmarks/Programs/memload.c)
    curl  # SocketTests: fetches from servers running under junction
    openjdk-17-jdk-headless  # SocketTests: java -version, a com.sun.net.httpserver server (source launcher)
    libpython3.11-testsuite  # scripts/long-tests.sh: CPython's regression modules under junction
    nodejs                   # scripts/long-tests.sh: node -e 0 starts; ServerTests: a Node http server
    nginx-light              # ServerTests: nginx under junction (host sockets and --net tap); junction-bench apps
    wrk                      # ServerTests: wrk against nginx under junction; junction-bench apps
)

missing=()
for p in "${JUNCTION_APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "junction: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "junction: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # tshark's package asks whether non-root users may capture; the answer is no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        export PATH=/opt/swift/usr/bin:$PATH
    else
        echo "junction: no Swift toolchain on PATH (Swift 6.1 or later is needed)" >&2
        exit 1
    fi
fi
