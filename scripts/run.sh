#!/usr/bin/env bash
# run.sh: the main job. Installs dependencies, builds in release mode and runs the
# default program. Extra arguments are passed to it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build -c release --product uthreads-demo >&2
exec .build/release/uthreads-demo "$@"
