#!/usr/bin/env bash
# zstd figures (issue 22), each a ratio to a reference timed in the same round:
#   zstd input, --compression none         against `zstd -dc FILE > /dev/null`
#   zstd input, --compression zstd -l 3    against `zstd -dc FILE > /dev/null`
#   gzip input, --compression zstd -l 3    against the same run writing gzip level 6
# and peak RSS, also for an input made with `zstd --long=27`.
#
#   Benchmarks/zstd.sh [--rounds N] [RECORDS] [WORKDIR]
# Needs the ZSTD trait's library (libzstd-dev) and the zstd CLI. Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
if [[ "${1:-}" == --rounds ]]; then rounds=$2; shift 2; fi
records=${1:-1000000}
work=${2:-/tmp/consentgate-zstd}
mkdir -p "$work"
swift build -c release --traits ZSTD --scratch-path .build-zstd --product consentgate >/dev/null
bin=$PWD/.build-zstd/release/consentgate
if [[ ! -e "$work/data.$records" ]]; then
  "$bin" generate --records "$records" --users 100000 --seed 1 --clean --out "$work/gen" >/dev/null
  gzip -dc "$work/gen/posts.jsonl.gz" | gzip -6 > "$work/posts.jsonl.gz"
  gzip -dc "$work/gen/posts.jsonl.gz" | zstd -q -3 -c > "$work/posts.jsonl.zst"
  gzip -dc "$work/gen/posts.jsonl.gz" | zstd -q -3 --long=27 -c > "$work/long.jsonl.zst"
  touch "$work/data.$records"
fi
common=(filter --quiet --consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z)
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

declare -A t rss
run() { # KEY COMMAND...
  local key=$1 s m
  shift
  read -r s m <<< "$(measure "$@")"
  t[$key]+="$s"$'\n'
  rss[$key]=$m
}
for ((k = 0; k < rounds; k++)); do
  run zstd_dc sh -c "zstd -dc '$work/posts.jsonl.zst' > /dev/null"
  rm -rf "$work/o"; run zin_none "$bin" "${common[@]}" --compression none --out "$work/o" "$work/posts.jsonl.zst"
  rm -rf "$work/o"; run zin_zstd "$bin" "${common[@]}" --compression zstd --level 3 --out "$work/o" "$work/posts.jsonl.zst"
  rm -rf "$work/o"; run gin_zstd "$bin" "${common[@]}" --compression zstd --level 3 --out "$work/o" "$work/posts.jsonl.gz"
  rm -rf "$work/o"; run gin_gzip "$bin" "${common[@]}" --level 6 --out "$work/o" "$work/posts.jsonl.gz"
  rm -rf "$work/o"; run long "$bin" "${common[@]}" --compression none --out "$work/o" "$work/long.jsonl.zst"
done
m() { printf '%s' "${t[$1]}" | median; }
ratio() { echo "$1 / $2" | bc -l; }
printf 'zstd -dc > /dev/null                      %6.2f s\n' "$(m zstd_dc)"
printf 'zstd in, --compression none              %6.2f s  %.2fx zstd -dc  peak RSS %d MB\n' \
  "$(m zin_none)" "$(ratio "$(m zstd_dc)" "$(m zin_none)")" $((rss[zin_none] / 1024))
printf 'zstd in, --compression zstd --level 3    %6.2f s  %.2fx zstd -dc  peak RSS %d MB\n' \
  "$(m zin_zstd)" "$(ratio "$(m zstd_dc)" "$(m zin_zstd)")" $((rss[zin_zstd] / 1024))
printf 'gzip in, --compression zstd --level 3    %6.2f s  %.2fx the gzip level 6 run (%.2f s)  peak RSS %d MB\n' \
  "$(m gin_zstd)" "$(ratio "$(m gin_gzip)" "$(m gin_zstd)")" "$(m gin_gzip)" $((rss[gin_zstd] / 1024))
printf 'zstd --long=27 in, --compression none    %6.2f s  peak RSS %d MB\n' "$(m long)" $((rss[long] / 1024))
