#!/usr/bin/env bash
# The Ray path end to end (run by .ci/run): a venv with this package and a pinned Ray, a
# head and a second node on loopback, the Fixtures plus 16 generated inputs in 4 shards, one
# shard's consentgate SIGKILLed mid-run (Ray retries it), and then the merged report must
# equal an unsharded run's key for key (but for the keys SPEC §10 lets differ) and the kept
# and quarantine bytes must be identical. The cluster is stopped at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
RAY_VERSION=2.60.0
bin=$PWD/.build/debug/consentgate

if [[ "${1:-}" != --in-namespace ]]; then
  swift build --product consentgate >/dev/null
  venv=${CONSENTGATE_RAY_VENV:-$PWD/.build/ray-venv}
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ray==$RAY_VERSION" ./Integrations/ray
  # The cluster runs in a network namespace of its own with only loopback: Ray otherwise
  # connects its parts through the host's external address.
  if unshare -n true 2>/dev/null; then
    exec unshare -n -- "$0" --in-namespace "$venv"
  fi
  echo "ray test: no network namespace here; the cluster uses the host's addresses" >&2
  exec "$0" --in-namespace "$venv"
fi
venv=$2
ip link set lo up 2>/dev/null || true
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
  "$venv/bin/ray" stop --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export RAY_USAGE_STATS_ENABLED=0
"$venv/bin/ray" start --head --node-ip-address 127.0.0.1 --port "$port" --num-cpus 1 \
  --include-dashboard=false --disable-usage-stats >/dev/null
"$venv/bin/ray" start --address "127.0.0.1:$port" --node-ip-address 127.0.0.1 --num-cpus 1 \
  >/dev/null

"$bin" generate --records 320000 --users 20000 --files 16 --out "$work/gen" >/dev/null
inputs=(Fixtures/posts-a.jsonl Fixtures/posts-b.jsonl.gz "$work"/gen/posts-*.jsonl.gz)
options=(--consent "$work/gen/consent.csv" --jurisdictions "$work/gen/jurisdictions.csv"
  --cutoff 2026-01-01T00:00:00Z --threads 1)

"$bin" filter --quiet --out "$work/one" "${options[@]}" "${inputs[@]}"

# Kill shard 1's first consentgate as soon as it runs; Ray must run it again.
(
  for _ in $(seq 1 600); do
    if pid=$(pgrep -f -- "--shard 1/4" | head -1) && [[ -n "$pid" ]]; then
      sleep 0.3
      kill -9 "$pid" && echo "killed shard 1/4 (pid $pid)" > "$work/killed"
      exit 0
    fi
    sleep 0.05
  done
) &
killer=$!

status=0
"$venv/bin/python" -m consentgate_ray --address "127.0.0.1:$port" --node-ip-address 127.0.0.1 \
  --shards 4 --out "$work/many" --binary "$bin" -- "${options[@]}" "${inputs[@]}" || status=$?
wait "$killer" || true
[[ $status -eq 0 ]] || { echo "ray test: the driver exited $status" >&2; exit 1; }
[[ -s "$work/killed" ]] || { echo "ray test: no shard was killed mid-run" >&2; exit 1; }
cat "$work/killed"

"$venv/bin/python" - "$work/one/report.json" "$work/many/report.json" <<'PY'
import json, sys
one, many = (json.load(open(p)) for p in sys.argv[1:3])
assert many.get("shards") == 4, many.get("shards")
free = {"started_at", "finished_at", "threads", "shards"}
def fixed(r):
    r = {k: v for k, v in r.items() if k not in free}
    r["inputs"] = sorted(r["inputs"], key=lambda i: i["path"])
    r["outputs"] = sorted(r["outputs"], key=lambda o: o["path"])
    r["warnings"] = sorted(r["warnings"])
    return r
a, b = fixed(one), fixed(many)
differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
assert not differ, f"merged report differs from the unsharded one in {differ}"
print(f"ray test: merged report of 4 shards equals the unsharded report ({len(a['inputs'])} inputs)")
PY
for part in kept quarantine; do
  for f in "$work/one/$part"/*; do
    cmp -s "$f" "$work/many/$part/$(basename "$f")" || { echo "ray test: $part/$(basename "$f") differs" >&2; exit 1; }
  done
done
echo "ray test: kept and quarantine bytes identical"
