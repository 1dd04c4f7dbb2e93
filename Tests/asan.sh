#!/usr/bin/env bash
# The test suite under AddressSanitizer (and LeakSanitizer, with Foundation's own leaks
# suppressed). lld links: gold fails on ASan objects. Extra arguments go to `swift test`
# (e.g. --traits ISAL,LIBDEFLATE).
set -euo pipefail
cd "$(dirname "$0")/.."
export LSAN_OPTIONS="suppressions=$PWD/Tests/lsan.supp:print_suppressions=0"
swift test --sanitize=address --disable-xctest --scratch-path .build-asan \
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld "$@"
