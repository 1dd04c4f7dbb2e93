#!/usr/bin/env bash
# What sharding costs (issue 19's goals), each a ratio of two runs in the same session:
#   scaling   16 inputs: 2 shards x --threads 1 side by side, against 1 process --threads 2;
#   start-up  an empty shard (side files loaded, no input), for 1k / 100k users;
#   ray       4 shards through consentgate_ray (cluster already up) against `xargs -P2`
#             running the same 4 shard commands (needs RAY_VENV with consentgate_ray + ray).
#
#   Benchmarks/shards.sh [RECORDS] [WORKDIR]      (default 1,000,000 records in 16 files)
# Asserts nothing; prints seconds and ratios. Run the Ray row inside `unshare -n` (loopback
# only) as Integrations/ray/test.sh does, or leave RAY_VENV unset to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
work=${2:-/tmp/consentgate-shards}
rounds=${ROUNDS:-3}
swift build -c release --product consentgate >/dev/null
bin=$PWD/.build/release/consentgate
mkdir -p "$work"
if [[ ! -e "$work/gen.$records" ]]; then
  rm -rf "$work/gen"
  "$bin" generate --records "$records" --users 100000 --files 16 --clean --out "$work/gen" >/dev/null
  touch "$work/gen.$records"
fi
inputs=("$work"/gen/posts-*.jsonl.gz)
opts=(--quiet --consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z --compression none)
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

one() { rm -rf "$work/one"; "$bin" filter "${opts[@]}" --threads 2 --out "$work/one" "${inputs[@]}"; }
two() {
  rm -rf "$work/two"
  printf '%s\n' 0 1 | xargs -P 2 -I{} "$bin" filter "${opts[@]}" --threads 1 --shard {}/2 \
    --out "$work/two" "${inputs[@]}"
}
a="" b=""
for ((k = 0; k < rounds; k++)); do
  a+="$(seconds one)"$'\n'
  b+="$(seconds two)"$'\n'
done
ta=$(printf '%s' "$a" | median)
tb=$(printf '%s' "$b" | median)
printf 'scaling: 1 process --threads 2: %.2f s; 2 shards x --threads 1: %.2f s; shards/one throughput %.3f\n' \
  "$ta" "$tb" "$(echo "$ta / $tb" | bc -l)"

# Start-up: a shard with no input of its own still loads the side files and writes a report.
small=$work/small-consent.csv
head -1001 "$work/gen/consent.csv" > "$small"
for ledger in "$small" "$work/gen/consent.csv"; do
  s=""
  for ((k = 0; k < rounds; k++)); do
    rm -rf "$work/empty"
    s+="$(seconds "$bin" filter --quiet --consent "$ledger" --cutoff 2026-01-01T00:00:00Z \
      --shard 16/17 --out "$work/empty" "${inputs[@]}")"$'\n'
  done
  printf 'start-up of an empty shard, ledger of %s rows: %.3f s\n' \
    "$(($(wc -l < "$ledger") - 1))" "$(printf '%s' "$s" | median)"
done

if [[ -n "${RAY_VENV:-}" && -n "${RAY_ADDRESS:-}" ]]; then
  ray_run() {
    rm -rf "$work/ray"
    "$RAY_VENV/bin/python" -m consentgate_ray --address "$RAY_ADDRESS" --node-ip-address 127.0.0.1 \
      --shards 4 --out "$work/ray" --binary "$bin" -- "${opts[@]}" "${inputs[@]}"
  }
  xargs_run() {
    rm -rf "$work/xargs"
    printf '%s\n' 0 1 2 3 | xargs -P 2 -I{} "$bin" filter "${opts[@]}" --threads 1 --shard {}/4 \
      --out "$work/xargs" "${inputs[@]}"
    "$bin" merge-reports "$work/xargs"
  }
  r="" x=""
  for ((k = 0; k < rounds; k++)); do
    r+="$(seconds ray_run)"$'\n'
    x+="$(seconds xargs_run)"$'\n'
  done
  tr=$(printf '%s' "$r" | median)
  tx=$(printf '%s' "$x" | median)
  printf 'ray: 4 shards via consentgate_ray %.2f s; xargs -P2 %.2f s; ray/xargs %.3f\n' \
    "$tr" "$tx" "$(echo "$tr / $tx" | bc -l)"
fi
