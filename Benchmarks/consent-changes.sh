#!/usr/bin/env bash
# What consent-over-time costs (issue 20's goals), each a ratio of two runs in one session:
#   lineage   filter --lineage against filter without it (gzip level 6)
#   audit     audit over the kept output against filter --compression none over the same file
#   purge     purge at level 6 against filter at level 6 over the same file
#   affected  10,000 ids against the lineage of 1,000 generated kept files (time, peak RSS)
#
#   Benchmarks/consent-changes.sh [RECORDS] [WORKDIR]     (default 1,000,000 records)
# Asserts nothing; prints seconds, ratios and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
work=${2:-/tmp/consentgate-changes}
rounds=${ROUNDS:-3}
swift build -c release --product consentgate >/dev/null
bin=$PWD/.build/release/consentgate
mkdir -p "$work"
if [[ ! -e "$work/gen.$records" ]]; then
  rm -rf "$work/gen"
  "$bin" generate --records "$records" --users 100000 --clean --out "$work/gen" >/dev/null
  touch "$work/gen.$records"
fi
in=$work/gen/posts.jsonl.gz
side=(--consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv")
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
declare -A t
run() { local key=$1 s m; shift; read -r s m <<< "$(measure "$@")"; t[$key]+="$s"$'\n'; }
m() { printf '%s' "${t[$1]}" | median; }

# The corpus to audit and purge: filtered once with lineage, then its kept file is the input
# of the reference filter runs, so that every run reads the same bytes.
rm -rf "$work/corpus"
"$bin" filter --quiet "${side[@]}" --cutoff 2025-06-01T00:00:00Z --lineage --out "$work/corpus" "$in"
kept=$work/corpus/kept/posts.jsonl.gz
for ((k = 0; k < rounds; k++)); do
  rm -rf "$work/o"; run plain "$bin" filter --quiet "${side[@]}" --cutoff 2026-01-01T00:00:00Z --out "$work/o" "$in"
  rm -rf "$work/o"; run lineage "$bin" filter --quiet "${side[@]}" --cutoff 2026-01-01T00:00:00Z --lineage --out "$work/o" "$in"
  rm -rf "$work/o"; run ref_none "$bin" filter --quiet "${side[@]}" --cutoff 2026-01-01T00:00:00Z --compression none --out "$work/o" "$kept"
  rm -rf "$work/a"; run audit "$bin" audit --corpus "$work/corpus" "${side[@]}" --cutoff 2026-01-01T00:00:00Z --out "$work/a"
  rm -rf "$work/o"; run ref_6 "$bin" filter --quiet "${side[@]}" --cutoff 2026-01-01T00:00:00Z --lineage --out "$work/o" "$kept"
  rm -rf "$work/p"; run purge "$bin" purge --quiet --corpus "$work/corpus" "${side[@]}" --cutoff 2026-01-01T00:00:00Z --out "$work/p"
done
ratio() { echo "$1 / $2" | bc -l; }
printf 'filter --lineage   %6.2f s against %6.2f s without: throughput %.3f\n' "$(m lineage)" "$(m plain)" "$(ratio "$(m plain)" "$(m lineage)")"
printf 'audit              %6.2f s against filter --compression none %6.2f s: throughput %.3f\n' "$(m audit)" "$(m ref_none)" "$(ratio "$(m ref_none)" "$(m audit)")"
printf 'purge (level 6)    %6.2f s against filter level 6 %6.2f s: throughput %.3f\n' "$(m purge)" "$(m ref_6)" "$(ratio "$(m ref_6)" "$(m purge)")"

# affected: 1,000 kept files of 100,000 distinct users each (100 M kept records), filtered
# with --lineage so the lineage files are the ones filter writes; 10,000 queried ids.
if [[ ! -e "$work/lineage-corpus.v2" ]]; then
  rm -rf "$work/lineage-corpus" "$work/lineage-in"
  python3 - "$work/lineage-in" <<'PY'
import os, random, sys
root = sys.argv[1]
os.makedirs(root, exist_ok=True)
rng = random.Random(5)
for f in range(1000):
    ids = {1_000_000_000 + rng.randrange(40_000_000) for _ in range(100_000)}
    while len(ids) < 100_000:
        ids.add(1_000_000_000 + rng.randrange(40_000_000))
    with open(f"{root}/part-{f:04d}.jsonl", "w") as out:
        out.write("".join(f'{{"user_id":"{i}"}}\n' for i in ids))
with open(f"{root}/users", "w") as out:
    out.write("".join(f"{1_000_000_000 + rng.randrange(40_000_000)}\n" for _ in range(10_000)))
PY
  ls "$work"/lineage-in/part-*.jsonl > "$work/lineage-in/list"
  "$bin" filter --quiet --lineage --unknown-jurisdiction allow --cutoff 2025-06-01T00:00:00Z \
    --inputs-from "$work/lineage-in/list" --out "$work/lineage-corpus"
  mv "$work/lineage-in/users" "$work/lineage-corpus.users"
  rm -rf "$work/lineage-in"
  touch "$work/lineage-corpus.v2"
fi
lineage_mb=$(du -sm "$work/lineage-corpus/lineage" | cut -f1)
read -r s rss <<< "$(measure "$bin" affected --corpus "$work/lineage-corpus" --users "$work/lineage-corpus.users" --json)"
printf 'affected           %6.2f s for 10,000 ids over 1,000 lineage files (%d MB), peak RSS %d MB\n' "$s" "$lineage_mb" $((rss / 1024))
