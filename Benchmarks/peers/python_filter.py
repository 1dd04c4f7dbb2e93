#!/usr/bin/env python3
"""The job a team would otherwise script: stdlib gzip + orjson, one process.

  python_filter.py --consent C --jurisdictions J --cutoff T --out DIR INPUT...

Keeps, drops and quarantines like `consentgate filter` with its default policy on data
from `consentgate generate --clean`; writes DIR/kept/NAME and DIR/quarantine/NAME (gzip
level 6) and prints the counts as JSON."""
import csv
import datetime
import gzip
import json
import os
import sys

import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import RANK, arguments, country_signal  # noqa: E402


def seconds(text):
    if text.isdigit():
        return int(text)
    return datetime.datetime.fromisoformat(text).timestamp()


def main():
    a = arguments("+")
    cutoff = seconds(a.cutoff)

    state = {}  # user -> (time, rank, state)
    with open(a.consent, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["purpose"] != "ai_training":
                continue
            t = seconds(row["recorded_at"])
            if t > cutoff:
                continue
            s = row["status"].lower()
            if s == "granted":
                x = row.get("expires_at") or ""
                s = "consent_expired" if x and seconds(x) <= cutoff else "valid"
            best = state.get(row["user_id"])
            if best is None or (t, RANK[s]) > (best[0], best[1]):
                state[row["user_id"]] = (t, RANK[s], s)

    tags = {}  # user -> set of signals
    with open(a.jurisdictions, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            signal = country_signal(row["country"])
            if signal:
                tags.setdefault(row["user_id"], set()).add(signal)

    counts = {"records": 0, "kept": 0, "dropped": 0, "quarantined": 0, "reasons": {}}
    for path in a.inputs:
        name = os.path.basename(path)
        os.makedirs(os.path.join(a.out, "kept"), exist_ok=True)
        os.makedirs(os.path.join(a.out, "quarantine"), exist_ok=True)
        kept = gzip.open(os.path.join(a.out, "kept", name), "wb", compresslevel=6)
        quarantine = gzip.open(os.path.join(a.out, "quarantine", name), "wb", compresslevel=6)
        with gzip.open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                record = line.rstrip(b"\n")
                if record.endswith(b"\r"):
                    record = record[:-1]
                if not record.strip(b" \t\r"):
                    continue
                counts["records"] += 1
                user = orjson.loads(record)["user_id"]
                user = str(user)
                signals = tags.get(user, set())
                s = state.get(user, (0, 0, "no_consent"))[2]
                if not signals:
                    reason = "unknown_jurisdiction"
                elif s == "objected":
                    reason = "objected"
                elif "protected" in signals:
                    reason = "consented" if s == "valid" else s
                else:
                    reason = "not_protected"
                counts["reasons"][reason] = counts["reasons"].get(reason, 0) + 1
                if reason in ("consented", "not_protected"):
                    counts["kept"] += 1
                    kept.write(record + b"\n")
                elif reason == "unknown_jurisdiction":
                    counts["quarantined"] += 1
                    quarantine.write(
                        b'{"source":' + orjson.dumps(name) + b',"line":' + str(n).encode()
                        + b',"reason":"' + reason.encode() + b'","record":' + record.strip(b" \t")
                        + b"}\n")
                else:
                    counts["dropped"] += 1
        kept.close()
        quarantine.close()
    print(json.dumps(counts, sort_keys=True))


main()
