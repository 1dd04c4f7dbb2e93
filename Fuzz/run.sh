#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs one for a while.
#   Fuzz/run.sh TARGET [SECONDS] [extra libFuzzer options]
# TARGET is scan, gzip, ledger, decide, deflate or zstd (built with the ZSTD trait, which needs
# libzstd-dev). Seeds are in Fuzz/corpus/TARGET; crashes go
# to Fuzz/artifacts/. Replay a crash without the fuzzer: swift run consentgate-fuzz TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: Fuzz/run.sh scan|gzip|ledger|decide|deflate|zstd [seconds]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
traits=()
[[ "$target" == zstd ]] && traits=(--traits ZSTD)
swift build -c release --product consentgate-fuzz --scratch-path .build-fuzz "${traits[@]}" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
  -Xcc -fsanitize=fuzzer-no-link,address \
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >/dev/null  # gold crashes on ASan objects
# New inputs go to a working corpus outside git; the committed seeds are read from Fuzz/corpus.
mkdir -p ".build-fuzz/corpus/$target" Fuzz/artifacts
exec .build-fuzz/release/consentgate-fuzz "$target" ".build-fuzz/corpus/$target" "Fuzz/corpus/$target" \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix=Fuzz/artifacts/ -print_final_stats=1 "$@"
