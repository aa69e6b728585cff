#!/usr/bin/env bash
# consumer-test.sh: builds a throwaway package that depends on this one BY VERSION (a bare
# clone tagged 0.1.0, reached by a file:// URL) and imports every library product, as a
# new user's package would. Commits nothing here: the snapshot is made in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v git >/dev/null 2>&1; then
    echo "consumer-test: SKIPPED: git is missing (it is how SwiftPM fetches a versioned dependency)"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/junction-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A snapshot of the working tree (committed or not) as one commit, tagged 0.1.0.
git clone -q --no-hardlinks . "$work/src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    if [ -e "$f" ]; then mkdir -p "$work/src/$(dirname "$f")"; cp -a "$f" "$work/src/$f"; else rm -f "$work/src/$f"; fi
done
(
    cd "$work/src"
    export GIT_AUTHOR_NAME=consumer-test GIT_AUTHOR_EMAIL=consumer-test@localhost
    export GIT_COMMITTER_NAME=consumer-test GIT_COMMITTER_EMAIL=consumer-test@localhost
    git add -A
    git commit -q --allow-empty -m "consumer-test snapshot"
    git tag 0.1.0
)
git clone -q --bare "$work/src" "$work/junction.git"

# The consumer: every library product of Package.swift, imported by one executable.
products=$(grep -o '\.library(name: "[A-Za-z0-9_]*"' Package.swift | sed 's/.*"\(.*\)"/\1/')
[ -n "$products" ] || { echo "consumer-test: no library products found in Package.swift" >&2; exit 1; }
mkdir -p "$work/consumer/Sources/Consumer"
{
    echo '// swift-tools-version:6.1'
    echo 'import PackageDescription'
    echo 'let package = Package('
    echo '    name: "Consumer",'
    echo '    dependencies: [.package(url: "file://'"$work"'/junction.git", from: "0.1.0")],'
    echo '    targets: [.executableTarget(name: "Consumer", dependencies: ['
    for p in $products; do echo "        .product(name: \"$p\", package: \"junction\"),"; done
    echo '    ])]'
    echo ')'
} > "$work/consumer/Package.swift"
{
    for p in $products; do echo "import $p"; done
    echo 'print("consumer: imported every Junction library product")'
} > "$work/consumer/Sources/Consumer/main.swift"

echo "consumer-test: building a package that depends on junction 0.1.0 by file:// URL and imports: $(echo $products)"
if ! (cd "$work/consumer" && swift build --scratch-path "$work/build" 2>&1 | tail -n 40); then
    echo "consumer-test: FAILED" >&2; exit 1
fi
(cd "$work/consumer" && swift build --scratch-path "$work/build" >/dev/null 2>&1 && "$work/build/debug/Consumer")
echo "consumer-test: passed"
