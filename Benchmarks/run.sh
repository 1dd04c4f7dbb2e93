#!/usr/bin/env bash
# End-to-end throughput, every figure a ratio to a reference timed in the same run.
#
#   Benchmarks/run.sh [--isal] [--compare] [--rounds N] [RECORDS] [WORKDIR]
#
# Generates RECORDS records (default 1,400,000: about 1 GB uncompressed) with
# `consentgate generate --clean`, recompressed with `gzip -6`, then times `consentgate filter`
# against `zcat FILE > /dev/null` and, when installed, `igzip -dc FILE > /dev/null`.
#   --isal     also builds with the ISAL and LIBDEFLATE traits (needs libisal-dev,
#              libdeflate-dev; isal for igzip) and times that build too.
#   --compare  also runs the same job as a Python script (gzip + orjson), as a DuckDB
#              query and with Polars (pip install orjson duckdb polars), checks that all
#              four keep, drop and quarantine the same records, and prints the speed ratios.
#   --rounds N times each filter run N times, each right after its references (timings on
#              shared machines swing 10-40 %), and prints the median and range of the ratios.
# Prints seconds, MB/s of uncompressed input, ratios and peak RSS; asserts nothing except
# that the peers agree on the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
isal=0
compare=0
rounds=1
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --isal) isal=1 ;;
    --compare) compare=1 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
records=${1:-1400000}
work=${2:-/tmp/consentgate-bench}
mkdir -p "$work"

swift build -c release >/dev/null
cp .build/release/consentgate "$work/consentgate-zlib"
if ((isal)); then
  # A scratch folder of its own: with traits switched in .build, every run rebuilt all.
  swift build -c release --traits ISAL,LIBDEFLATE --scratch-path .build-isal >/dev/null
  cp .build-isal/release/consentgate "$work/consentgate-isal"
fi
bench=.build/release/consentgate-bench

# The marker file says the data in WORKDIR was made for this record count.
if [[ ! -e "$work/clean.gz.$records" ]]; then
  "$work/consentgate-zlib" generate --records "$records" --users 100000 --seed 1 --clean \
    --out "$work" >/dev/null
  gzip -dc "$work/posts.jsonl.gz" | gzip -6 > "$work/clean.gz"
  touch "$work/clean.gz.$records"
fi
file="$work/clean.gz"
raw=$(gzip -dc "$file" | wc -c)

# Elapsed seconds, peak RSS (KiB) and CPU seconds (user + system) of one run.
measure() { /usr/bin/time -f "%e %M %U %S" "$@" 2>&1 >/dev/null | tail -1 |
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }'; }
mbps() { echo "$raw / $1 / 1000000" | bc -l; }
row() { printf "%-44s %7.2f s %7.1f MB/s %s\n" "$1" "$2" "$(mbps "$2")" "${3:-}"; }

# Median and range of numbers, one per line: "median (min-max)".
summary() { sort -g | awk '{ a[NR] = $1 } END {
  m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
  printf (NR > 1 ? "%.2f (%.2f-%.2f)" : "%.2f"), m, a[1], a[NR] }'; }

echo "input: $file: $(stat -c %s "$file") bytes gzip -6, $raw bytes uncompressed, $records records"
time_references() {
  read -r zcat_t _ <<< "$(measure sh -c "gzip -dc '$file' > /dev/null")"
  igzip_t=""
  if command -v igzip >/dev/null; then
    read -r igzip_t _ <<< "$(measure sh -c "igzip -dc '$file' > /dev/null")"
  fi
}
time_references
row "zcat > /dev/null" "$zcat_t"
if [[ -n "$igzip_t" ]]; then
  row "igzip -dc > /dev/null" "$igzip_t" "$(printf '%.2fx zcat' "$(echo "$zcat_t / $igzip_t" | bc -l)")"
fi

common=(filter --quiet --consent "$work/consent.csv" --jurisdictions "$work/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z)
run_filter() { # BUILD LABEL ARGS...
  local build=$1 label=$2
  shift 2
  local times="" cpus="" zr="" ir="" t rss cpu k
  for ((k = 0; k < rounds; k++)); do
    ((rounds > 1)) && time_references
    rm -rf "$work/out-$build"
    read -r t rss cpu <<< "$(measure "$work/consentgate-$build" "${common[@]}" "$@" --out "$work/out-$build" "$file")"
    times+="$t"$'\n'
    cpus+="$cpu"$'\n'
    zr+="$(echo "$zcat_t / $t" | bc -l)"$'\n'
    [[ -n "$igzip_t" ]] && ir+="$(echo "$igzip_t / $t" | bc -l)"$'\n'
  done
  t=$(printf '%s' "$times" | summary | cut -d' ' -f1)
  local ratios
  ratios="$(printf '%s' "$zr" | summary)x zcat"
  [[ -n "$ir" ]] && ratios+="  $(printf '%s' "$ir" | summary)x igzip"
  # CPU seconds swing less than elapsed ones when the host is busy: with both cores in use,
  # elapsed time can only fall by taking CPU time out.
  row "$label" "$t" "$ratios  CPU $(printf '%s' "$cpus" | summary) s  peak RSS $((rss / 1024)) MB"
  last_t=$t
}
run_filter zlib "filter (default build) --compression none" --compression none
run_filter zlib "filter (default build) gzip level 1" --level 1
run_filter zlib "filter (default build) gzip level 6" --level 6
cg6_t=$last_t
cp "$work/out-zlib/report.json" "$work/report-zlib-6.json"
if ((isal)); then
  run_filter isal "filter (ISA-L) --compression none" --compression none
  run_filter isal "filter (ISA-L) gzip level 1" --level 1
  run_filter isal "filter (ISA-L + libdeflate) gzip level 6" --level 6
fi
python3 - "$work/report-zlib-6.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f"records {t['records']}, kept {t['kept'] / t['records']:.1%}, dropped {t['dropped']}, quarantined {t['quarantined']}")
PY

if ((compare)); then
  echo "--- the same job, other tools (output gzip level 6, counts checked)"
  peers=(--consent "$work/consent.csv" --jurisdictions "$work/jurisdictions.csv"
    --cutoff 2026-01-01T00:00:00Z)
  for peer in python duckdb polars; do
    rm -rf "$work/out-$peer"
    read -r t rss _ <<< "$(measure python3 "Benchmarks/peers/${peer}_filter.py" "${peers[@]}" \
      --out "$work/out-$peer" "$file")"
    row "$peer" "$t" "$(printf 'consentgate (default build, level 6) is %.1fx faster  peak RSS %d MB' \
      "$(echo "$t / $cg6_t" | bc -l)" "$((rss / 1024))")"
  done
  # Same records kept and quarantined: the decompressed outputs are compared byte for byte.
  for peer in python duckdb polars; do
    for part in kept quarantine; do
      if cmp -s <(gzip -dc "$work/out-zlib/$part/clean.gz") <(gzip -dc "$work/out-$peer/$part/clean.gz"); then
        echo "$peer: $part output identical to consentgate's"
      else
        echo "$peer: $part output DIFFERS from consentgate's" >&2
        exit 1
      fi
    done
  done
fi

echo "--- stages (default build)"
swift build -c release >/dev/null
"$bench" read "$file"
"$bench" scan "$file"
"$bench" deflate "$file" 6
