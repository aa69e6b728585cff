#!/usr/bin/env bash
# test.sh: installs dependencies, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build --build-tests
exec swift test --skip-build "$@"
