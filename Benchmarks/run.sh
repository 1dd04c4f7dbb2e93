#!/usr/bin/env bash
# End-to-end throughput: generates ~1 GB of records with `consentgate generate`, then times
# `consentgate filter` against `zcat` (and `igzip -dc` when installed) on the same file in
# one run, and runs the stage benchmarks. Prints MB/s and ratios; asserts nothing.
#   Benchmarks/run.sh [RECORDS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1400000}
work=${2:-/tmp/consentgate-bench}
swift build -c release >/dev/null
bin=.build/release/consentgate
bench=.build/release/consentgate-bench
mkdir -p "$work"
if [[ ! -s "$work/p6.gz.$records" ]]; then
  "$bin" generate --records "$records" --users 100000 --seed 1 --out "$work" >/dev/null
  gzip -dc "$work/posts.jsonl.gz" | gzip -6 > "$work/p6.gz"
  touch "$work/p6.gz.$records"
fi
file="$work/p6.gz"
raw=$(gzip -dc "$file" | wc -c)
time_of() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
echo "input: $file, $(stat -c %s "$file") bytes compressed, $raw bytes uncompressed"
zcat_t=$(time_of sh -c "gzip -dc '$file' > /dev/null")
printf "%-40s %7.2f s %8.1f MB/s\n" "zcat > /dev/null" "$zcat_t" "$(echo "$raw / $zcat_t / 1000000" | bc -l)"
if command -v igzip >/dev/null; then
  igzip_t=$(time_of sh -c "igzip -dc '$file' > /dev/null")
  printf "%-40s %7.2f s %8.1f MB/s\n" "igzip -dc > /dev/null" "$igzip_t" "$(echo "$raw / $igzip_t / 1000000" | bc -l)"
fi
common=(filter --quiet --consent "$work/consent.csv" --jurisdictions "$work/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z)
for variant in "none" "gzip 1" "gzip 6"; do
  set -- $variant
  args=(--compression "$1")
  [[ $# -gt 1 ]] && args+=(--level "$2")
  rm -rf "$work/out"
  t=$(time_of "$bin" "${common[@]}" "${args[@]}" --out "$work/out" "$file")
  rss=$( { /usr/bin/time -f "%M" "$bin" "${common[@]}" "${args[@]}" --out "$work/out2" "$file" >/dev/null; } 2>&1 | tail -1)
  printf "%-40s %7.2f s %8.1f MB/s  %5.2fx zcat  peak RSS %d MB\n" "filter --compression $variant" "$t" \
    "$(echo "$raw / $t / 1000000" | bc -l)" "$(echo "$zcat_t / $t" | bc -l)" "$((rss / 1024))"
done
python3 - "$work/out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f"records {t['records']}, kept {t['kept'] / t['records']:.1%}, dropped {t['dropped']}, quarantined {t['quarantined']}")
PY
echo "--- stages"
"$bench" read "$file"
"$bench" scan "$file"
"$bench" deflate "$file" 6
