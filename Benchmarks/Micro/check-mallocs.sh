#!/usr/bin/env bash
# Runs the micro-benchmarks and fails if any reports more mallocs (p50, per batch) than the
# limit committed in malloc-thresholds.txt. Malloc counts are stable across runs; times are
# not (they vary by about 20% on these machines), so only counts are checked.
set -euo pipefail
cd "$(dirname "$0")"
out=$(swift package benchmark --metric mallocCountTotal --no-progress --format markdown 2>&1)
echo "$out"
status=0
while IFS='|' read -r name limit; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  # The markdown table row after the benchmark's heading holds p0, p25, p50, …
  p50=$(echo "$out" | awk -v n="$name" '
    index($0, n) { found = 1; next }
    found && /^\| Malloc/ { gsub(/ /, ""); split($0, f, "|"); print f[5]; exit }')
  if [[ -z "$p50" ]]; then echo "check: no figure for '$name'"; status=1; continue; fi
  if (( p50 > limit )); then echo "check: '$name' mallocs $p50 > limit $limit"; status=1
  else echo "check: '$name' mallocs $p50 ≤ $limit"; fi
done < malloc-thresholds.txt
exit $status
