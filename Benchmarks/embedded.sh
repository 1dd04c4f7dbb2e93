#!/usr/bin/env bash
# Embedded people (issue 21, SPEC §13.1): the same filter run with and without
# --embedded-user-path /includes/tweets/*/author_id, as a ratio in the same round, on
#   gen      the generator's records, one in three quoting one or two users (--embeds)
#   gen-all  the same under --protect all (more records reach the embedded check)
#   xv2      X API v2 shaped records (data/includes, larger and nested), one in three
#            quoting and some replying (two paths), made by a script here
# and --children check on gen, against the run without it. Asserts nothing.
#
#   Benchmarks/embedded.sh [--rounds N] [RECORDS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
if [[ "${1:-}" == --rounds ]]; then rounds=$2; shift 2; fi
records=${1:-1000000}
work=${2:-/tmp/consentgate-embedded}
mkdir -p "$work"
swift build -c release --product consentgate >/dev/null
bin=$PWD/.build/release/consentgate
if [[ ! -e "$work/data.$records" ]]; then
  "$bin" generate --records "$records" --users 100000 --seed 7 --clean --embeds --out "$work/gen" >/dev/null
  python3 - "$records" "$work" <<'PY'
import gzip, json, random, sys
n, work = int(sys.argv[1]), sys.argv[2]
rng = random.Random(21)
words = "the a to and of in is it you that for on with this my data model training café 😀 \"q\"".split()
def text(): return " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
with gzip.open(f"{work}/xv2.jsonl.gz", "wt", compresslevel=6) as out:
    for i in range(n):
        author = str(1_000_000 + rng.randrange(100_000))
        data = {"id": str(1_790_000_000_000_000_000 + i), "author_id": author, "text": text(),
                "created_at": "2024-07-01T10:00:00.000Z", "lang": "en",
                "public_metrics": {"retweet_count": rng.randrange(100), "like_count": rng.randrange(1000)}}
        inc = {"users": [{"id": author, "username": "u" + author, "name": "User " + author}]}
        if rng.randrange(3) == 0:
            inc["tweets"] = []
            for k in range(rng.randint(1, 2)):
                other = str(1_000_000 + rng.randrange(100_000))
                inc["tweets"].append({"id": str(1_780_000_000_000_000_000 + i * 2 + k), "author_id": other, "text": text()})
                inc["users"].append({"id": other, "username": "u" + other})
            if rng.randrange(2) == 0:
                data["in_reply_to_user_id"] = inc["tweets"][0]["author_id"]
        out.write(json.dumps({"data": data, "includes": inc}, separators=(",", ":"), ensure_ascii=False) + "\n")
PY
  touch "$work/data.$records"
fi
side=(--consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z --quiet --compression none)
tweets=(--embedded-user-path '/includes/tweets/*/author_id')
measure() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
declare -A t
run() { # KEY COMMAND...
  local key=$1
  shift
  rm -rf "$work/o"
  t[$key]+="$(measure "$@")"$'\n'
}
gen="$work/gen/posts.jsonl.gz"
for ((k = 0; k < rounds; k++)); do
  run gen_off "$bin" filter "${side[@]}" --out "$work/o" "$gen"
  run gen_on "$bin" filter "${side[@]}" "${tweets[@]}" --out "$work/o" "$gen"
  run all_off "$bin" filter "${side[@]}" --protect all --out "$work/o" "$gen"
  run all_on "$bin" filter "${side[@]}" --protect all "${tweets[@]}" --out "$work/o" "$gen"
  run x_off "$bin" filter "${side[@]}" --user-id-path /data/author_id --time-path /data/created_at --out "$work/o" "$work/xv2.jsonl.gz"
  run x_on "$bin" filter "${side[@]}" --user-id-path /data/author_id --time-path /data/created_at \
    "${tweets[@]}" --embedded-user-path /data/in_reply_to_user_id --out "$work/o" "$work/xv2.jsonl.gz"
  run kids "$bin" filter "${side[@]}" --children check --unknown-age adult --out "$work/o" "$gen"
done
m() { printf '%s' "${t[$1]}" | median; }
ratio() { echo "$1 / $2" | bc -l; }
line() { printf '%-44s %6.2f s  %6.2f s  %.3fx\n' "$1" "$(m "$2")" "$(m "$3")" "$(ratio "$(m "$2")" "$(m "$3")")"; }
printf '%-44s %8s  %8s  %s\n' "corpus ($records records, median of $rounds)" without with "ratio"
line "generator, 1/3 embed 1-2 (eea)" gen_off gen_on
line "generator, 1/3 embed 1-2 (--protect all)" all_off all_on
line "X v2 shape, 1/3 quote, 1/6 reply (2 paths)" x_off x_on
line "generator, --children check" gen_off kids
