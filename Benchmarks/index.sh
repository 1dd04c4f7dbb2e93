#!/usr/bin/env bash
# Consent index figures (issue 18). First `consentgate-bench index-file USERS DIR`: build time,
# peak RSS and size of an index of USERS users (`u_%010d`, one to three events, half tagged),
# open + verify, `index info`, batched lookups. Then `filter --index` over the 1M-record
# benchmark corpus with an index of those USERS plus the corpus's own 100k users, against the
# same run with the corpus's 100k-user `--consent` ledger, in alternating rounds, with the
# last-level cache misses of each (perf stat, when perf is installed).
#
#   Benchmarks/index.sh [--rounds N] [--filter-only] [USERS] [WORKDIR]
# --filter-only skips the index-file benchmark (its side files must be in WORKDIR).
# USERS defaults to 100,000,000 (about 12 GB of CSV and 10 GB of temporary runs in WORKDIR).
# Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
filter_only=0
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --filter-only) filter_only=1 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
users=${1:-100000000}
work=${2:-/tmp/consentgate-index}
mkdir -p "$work"
swift build -c release --product consentgate >/dev/null
swift build -c release --product consentgate-bench >/dev/null
bin=$PWD/.build/release/consentgate
if ((!filter_only)); then .build/release/consentgate-bench index-file "$users" "$work" "$bin"; fi
if [[ ! -e "$work/gen/posts.jsonl.gz" ]]; then
  "$bin" generate --records 1000000 --users 100000 --seed 1 --clean --out "$work/gen" >/dev/null
fi
cutoff=2025-01-01T00:00:00Z
if [[ ! -e "$work/both-$users.cgi" ]]; then
  "$bin" index build --output "$work/both-$users.cgi" --cutoff $cutoff \
    --consent "$work/gen/consent.csv" --consent "$work/ledger-$users.csv" \
    --jurisdictions "$work/gen/jurisdictions.csv" --jurisdictions "$work/tags-$users.csv"
fi
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
ledger=(--consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv")
index=(--index "$work/both-$users.cgi")
for compression in none gzip; do
  for ((k = 0; k < rounds; k++)); do
    rm -rf "$work/o"; run "ledger_$compression" "$bin" filter --quiet --cutoff $cutoff "${ledger[@]}" --compression $compression --out "$work/o" "$work/gen/posts.jsonl.gz"
    rm -rf "$work/o"; run "index_$compression" "$bin" filter --quiet --cutoff $cutoff "${index[@]}" --compression $compression --out "$work/o" "$work/gen/posts.jsonl.gz"
  done
done
m() { printf '%s' "${t[$1]}" | median; }
for compression in none gzip; do
  printf -- '--compression %-5s 100k-user ledger %6.2f s   index of %d users %6.2f s   ratio %.3f   peak RSS %d / %d MB\n' \
    $compression "$(m ledger_$compression)" "$users" "$(m index_$compression)" \
    "$(echo "$(m ledger_$compression) / $(m index_$compression)" | bc -l)" \
    $((rss[ledger_$compression] / 1024)) $((rss[index_$compression] / 1024))
done
if command -v perf > /dev/null; then
  for way in ledger index; do
    declare -n opts=$way
    rm -rf "$work/o"
    misses=$(perf stat -x, -e LLC-load-misses,cache-misses "$bin" filter --quiet --cutoff $cutoff "${opts[@]}" --compression none --out "$work/o" "$work/gen/posts.jsonl.gz" 2>&1 >/dev/null | awk -F, '{ printf "%s %s  ", $1, $3 }')
    echo "cache misses with the $way: $misses"
  done
fi
