#!/usr/bin/env bash
# run.sh: the main job. Installs dependencies, builds in release mode and runs an
# unmodified program under junction on the default configuration (host root through
# HostFS, /dev, as many kthreads as cores). Extra arguments replace the default program:
#   bash scripts/run.sh                          # a static busybox shell, builtins only
#   bash scripts/run.sh /usr/bin/python3 -c 'print(42)'
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build -c release --product junction >&2
if [[ $# -eq 0 ]]; then
    # (fork is not implemented yet, so the shell sticks to builtins, then execs a program)
    set -- /bin/busybox sh -c 'echo "hello from busybox sh under junction"; read -r line < /etc/os-release; echo "first line of /etc/os-release: $line"; for f in /etc/h*; do echo "$f"; done; exec /bin/busybox uname -sm'
fi
exec .build/release/junction -- "$@"
