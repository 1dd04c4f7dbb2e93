#!/usr/bin/env bash
# Hostile sizes (issue 7): each input must stream through `consentgate filter` (release
# build) under 256 MiB peak RSS with a small ledger, exit 0 and account for every record.
# Prints one row per input; exits non-zero if any row fails. Needs python3 and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product consentgate >/dev/null
bin=$PWD/.build/release/consentgate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limit_kb=$((256 * 1024))
printf 'user_id,purpose,status,recorded_at\nu1,ai_training,granted,2024-01-01T00:00:00Z\n' > "$work/consent.csv"

python3 - "$work" <<'PY'
import sys, zlib
work = sys.argv[1]
def member(data, copies):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = b"".join(c.compress(data) for _ in range(copies)) + c.flush()
    return out
# A bomb of one line: 1 GiB of 'a' per member, ten members: 10 GiB with no line end.
one = member(b"a" * (1 << 20), 1024)
open(f"{work}/bomb-line.gz", "wb").write(one * 10)
# A bomb of many lines: 256 MiB of short records per member, four members: 1 GiB.
rec = b'{"user_id":"u1","text":"again"}\n'
many = member(rec * ((1 << 20) // len(rec)), 256)
open(f"{work}/bomb-lines.gz", "wb").write(many * 4)
# One line nested 100,000 deep.
open(f"{work}/deep.jsonl", "wb").write(b'{"user_id":"u1","a":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
# A million tiny records.
open(f"{work}/tiny.jsonl", "wb").write(b'{"user_id":"u1"}\n' * 1_000_000)
PY

status=0
run() {  # name, then the command's arguments after `filter`
  local name=$1; shift
  local out="$work/out-$name"
  local rss code
  set +e
  /usr/bin/time -f "%M" -o "$work/rss-$name" "$bin" filter --quiet --protect all \
    --cutoff 2025-01-01T00:00:00Z --consent "$work/consent.csv" --out "$out" "$@" \
    >/dev/null 2>"$work/err-$name"
  code=$?
  set -e
  rss=$(tail -1 "$work/rss-$name")
  local report
  report=$(python3 -c "
import json,sys
r=json.load(open('$out/report.json'))
i=r['inputs'][0]
ok = i['records']==i['kept']+i['dropped']+i['quarantined']
print(f\"{i['status']} lines={i['lines']} records={i['records']} kept={i['kept']} quarantined={i['quarantined']} invariant={'ok' if ok else 'BROKEN'}\")
" 2>/dev/null || echo "no report")
  local verdict=ok
  if (( rss > limit_kb )) || (( code != 0 )) || [[ "$report" != ok* ]] || [[ "$report" == *BROKEN* ]]; then verdict=FAIL; status=1; fi
  printf '%-12s exit %d  peak RSS %4d MiB  %s  [%s]\n' "$name" "$code" $((rss / 1024)) "$report" "$verdict"
  [[ $verdict == ok ]] || sed 's/^/    /' "$work/err-$name" | head -5
}

run bomb-line "$work/bomb-line.gz"
run bomb-lines "$work/bomb-lines.gz"
run deep "$work/deep.jsonl"
run tiny "$work/tiny.jsonl"
# A 1 GiB line arriving on stdin.
run gig-line - < <(head -c $((1 << 30)) /dev/zero | tr '\0' 'b')
exit $status
