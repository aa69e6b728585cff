#!/usr/bin/env bash
# run.sh: the main job. Installs dependencies, builds in release mode and runs an
# unmodified program under junction on the default configuration (host root through
# HostFS, /dev, as many kthreads as cores). Extra arguments replace the default program:
#   bash scripts/run.sh                          # a static busybox shell with pipelines
#   bash scripts/run.sh /usr/bin/python3 -c 'print(42)'
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
# The Swift runtime linked statically (ld.so binding ten Swift libraries was a quarter of
# a short program's start-up; Performance.md, "startup"); its own build directory, so the
# package's default build (tests, junction-bench) is not rebuilt with other flags. A
# toolchain without lld gets the default, dynamic build.
if swift build -c release --product junction --scratch-path .build-static --static-swift-stdlib \
        -Xswiftc -use-ld=lld -Xlinker -l_FoundationCollections -Xlinker -l_FoundationCShims >&2; then
    junction=.build-static/release/junction
else
    echo "run.sh: the static build failed; building with the Swift runtime as shared libraries" >&2
    swift build -c release --product junction >&2
    junction=.build/release/junction
fi
if [[ $# -eq 0 ]]; then
    # A shell with pipelines, command substitution and a subshell: each a process.
    set -- /bin/busybox sh -c 'echo "hello from busybox sh under junction"; echo "first line of /etc/os-release: $(head -1 /etc/os-release)"; echo "$(ls /etc | wc -l) names in /etc"; (cd /etc && ls -d h* | sort -r); exec /bin/busybox uname -sm'
fi
exec "$junction" -- "$@"
