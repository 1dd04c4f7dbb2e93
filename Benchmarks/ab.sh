#!/usr/bin/env bash
# Two builds of consentgate on the same data in the same run, rounds interleaved (A, B, zcat),
# so that the host's busy spells hit both alike.
#
#   Benchmarks/ab.sh [--rounds N] BIN_A BIN_B [RECORDS] [WORKDIR]
#
# Two corpora, so that no figure is tuned to one generator:
#   generated  `consentgate generate --clean` (RECORDS records, default 1,000,000), gzip -6;
#   varied     records of another shape (Python): nested arrays and objects, escaped and
#              non-ASCII text, sizes from 60 bytes to 8 KiB, about half of them kept.
# For each corpus and output (`--compression none`, gzip level 6) prints the median seconds
# of A and B, B's time over A's (below 1: B is faster) and A's ratio to zcat. Asserts
# nothing but that A and B write identical outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
if [[ "${1:-}" == --rounds ]]; then rounds=$2; shift 2; fi
a=${1:?BIN_A}
b=${2:?BIN_B}
records=${3:-1000000}
work=${4:-/tmp/consentgate-ab}
mkdir -p "$work"

if [[ ! -e "$work/generated.gz.$records" ]]; then
  "$a" generate --records "$records" --users 100000 --seed 1 --clean --out "$work/gen" >/dev/null
  gzip -dc "$work/gen/posts.jsonl.gz" | gzip -6 > "$work/generated.gz"
  touch "$work/generated.gz.$records"
fi
if [[ ! -e "$work/varied.gz.$records" ]]; then
  python3 - "$work" "$records" <<'PY'
import gzip, json, random, sys
work, n = sys.argv[1], int(sys.argv[2]) * 3 // 10
rng = random.Random(7)
words = ["consent", "données", "Grüße", "training", "🙂", "tab\there", "quote\"d", "line\nbreak", "x" * 40]
with gzip.open(f"{work}/varied.gz", "wt", compresslevel=6, encoding="utf-8") as out:
    for i in range(n):
        size = rng.choice([2, 8, 30, 200])
        rec = {
            "id": i, "user_id": (lambda u: u if rng.random() < 0.5 else str(u))(1000000 + rng.randrange(100000)),
            "created_at": "2025-03-01T12:00:00Z",
            "text": " ".join(rng.choice(words) for _ in range(size)),
            "meta": {"lang": rng.choice(["de", "fr", "en"]), "tags": [rng.randrange(1000) for _ in range(rng.randrange(12))],
                     "reply": {"to": {"user": str(1000000 + rng.randrange(100000)), "depth": [[1, [2, [3]]]]}}},
            "scores": [rng.random() for _ in range(rng.randrange(6))],
        }
        out.write(json.dumps(rec, ensure_ascii=rng.random() < 0.5, separators=(",", ":")) + "\n")
PY
  touch "$work/varied.gz.$records"
fi

measure() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
common=(filter --quiet --consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z)

printf '%-10s %-18s %8s %8s %8s %10s\n' corpus output "A s" "B s" "B/A" "A/zcat"
for corpus in generated varied; do
  file="$work/$corpus.gz"
  for output in "--compression none" "--level 6"; do
    ta="" tb="" tz=""
    for ((k = 0; k < rounds; k++)); do
      rm -rf "$work/out-a" "$work/out-b"
      # shellcheck disable=SC2086
      ta+="$(measure "$a" "${common[@]}" $output --out "$work/out-a" "$file")"$'\n'
      # shellcheck disable=SC2086
      tb+="$(measure "$b" "${common[@]}" $output --out "$work/out-b" "$file")"$'\n'
      tz+="$(measure sh -c "gzip -dc '$file' > /dev/null")"$'\n'
    done
    for part in kept quarantine; do
      cmp -s "$work/out-a/$part/"* "$work/out-b/$part/"* || { echo "A and B differ: $part" >&2; exit 1; }
    done
    ma=$(printf '%s' "$ta" | median)
    mb=$(printf '%s' "$tb" | median)
    mz=$(printf '%s' "$tz" | median)
    printf '%-10s %-18s %8.2f %8.2f %8.3f %9.2fx\n' "$corpus" "$output" "$ma" "$mb" \
      "$(echo "$mb / $ma" | bc -l)" "$(echo "$mz / $ma" | bc -l)"
  done
done
