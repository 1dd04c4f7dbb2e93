#!/usr/bin/env bash
# The library as a user gets it: a separate package that depends on consentgate by version
# (a bare clone of this commit, tagged, reached by a file:// URL) must resolve — no unsafe
# build flags — and compile the README's library example, taken from the README itself.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone -q --bare . "$work/consentgate.git"
git -C "$work/consentgate.git" tag 99.0.0 HEAD

mkdir -p "$work/app/Sources/app"
cat > "$work/app/Package.swift" <<EOF
// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "app",
  dependencies: [.package(url: "file://$work/consentgate.git", from: "99.0.0")],
  targets: [
    .executableTarget(
      name: "app", dependencies: [.product(name: "ConsentGate", package: "consentgate")])
  ]
)
EOF
# Every swift block of the README's "Library" section, in order, as the program.
awk '/^## Library/ { on = 1; next } on && /^## / { exit }
  on && /^```swift/ { code = 1; next } code && /^```/ { code = 0; next } code' README.md \
  > "$work/app/Sources/app/main.swift"
test -s "$work/app/Sources/app/main.swift"
swift build --package-path "$work/app" 2>&1 | tail -3
echo "dependency check: a package depending on consentgate 99.0.0 compiles the README example"
