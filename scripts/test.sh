#!/usr/bin/env bash
# test.sh: installs dependencies, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
# A package depending on this one by version must resolve and build (no unsafe flags,
# every library product importable): builds a throwaway consumer in a temp dir.
bash scripts/consumer-test.sh
swift build --build-tests
exec swift test --skip-build "$@"
