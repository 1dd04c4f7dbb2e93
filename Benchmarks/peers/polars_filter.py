#!/usr/bin/env python3
"""The same job with Polars (lazy frames, all cores): the input is inflated with stdlib gzip
(Polars reads no gzip NDJSON stream), lines are kept as raw text so that kept records leave
byte for byte, and the outputs are written with stdlib gzip at level 6.

  polars_filter.py --consent C --jurisdictions J --cutoff T --out DIR INPUT

Prints the counts as JSON, like python_filter.py."""
import datetime
import gzip
import io
import json
import os
import sys

import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import EEA, OUTSIDE, arguments  # noqa: E402


def timestamps(column):
    """Epoch seconds of a text column holding epoch seconds or RFC 3339 times."""
    digits = column.str.contains(r"^[0-9]+$")
    parsed = column.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    return (
        pl.when(digits)
        .then(column.cast(pl.Int64, strict=False) * 1_000_000)
        .otherwise(parsed.dt.epoch("us"))
    )


def main():
    a = arguments(1)
    name = os.path.basename(a.inputs[0])
    for d in ("kept", "quarantine"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    cutoff = int(datetime.datetime.fromisoformat(a.cutoff).timestamp() * 1_000_000)

    rank = (
        pl.when(pl.col("state") == "objected").then(5)
        .when(pl.col("state") == "withdrawn").then(4)
        .when(pl.col("state") == "consent_expired").then(3)
        .otherwise(1)
    )
    state = (
        pl.scan_csv(a.consent, infer_schema=False)
        .filter(pl.col("purpose") == "ai_training")
        .with_columns(
            s=pl.col("status").str.to_lowercase(),
            t=timestamps(pl.col("recorded_at")),
            ex=timestamps(
                pl.when(pl.col("expires_at") == "").then(None).otherwise(pl.col("expires_at"))),
        )
        .filter(pl.col("t") <= cutoff)
        .with_columns(
            state=pl.when((pl.col("s") == "granted") & (pl.col("ex") <= cutoff))
            .then(pl.lit("consent_expired"))
            .when(pl.col("s") == "granted")
            .then(pl.lit("valid"))
            .otherwise(pl.col("s"))
        )
        .with_columns(rank=rank)
        .sort(["user_id", "t", "rank"], descending=[False, True, True])
        .group_by("user_id", maintain_order=True)
        .first()
        .select("user_id", "state")
    )
    code = pl.col("country").fill_null("").str.strip_chars(" \t").str.to_uppercase()
    code = code.replace({"EL": "GR", "UK": "GB"})
    tags = (
        pl.scan_csv(a.jurisdictions, infer_schema=False)
        .with_columns(c=code)
        .group_by("user_id")
        .agg(
            prot=(
                (pl.col("c") != "")
                & ~pl.col("c").is_in(sorted(OUTSIDE))
                & pl.col("c").str.split("-").list.first().is_in(sorted(EEA))
            ).any(),
            valid=(pl.col("c") != "").any(),
        )
    )

    with gzip.open(a.inputs[0], "rb") as f:
        raw = f.read()
    # One text column per line: a separator and no quote character that never occur.
    lines = pl.read_csv(
        io.BytesIO(raw), has_header=False, separator="\x01", quote_char=None,
        new_columns=["line"], schema_overrides={"line": pl.String},
    ).lazy()
    reason = (
        pl.when(pl.col("valid").is_null() | ~pl.col("valid")).then(pl.lit("unknown_jurisdiction"))
        .when(pl.col("state") == "objected").then(pl.lit("objected"))
        .when(pl.col("prot") & (pl.col("state").fill_null("no_consent") != "valid"))
        .then(pl.col("state").fill_null("no_consent"))
        .when(pl.col("prot")).then(pl.lit("consented"))
        .otherwise(pl.lit("not_protected"))
    )
    decided = (
        lines.with_row_index("n", offset=1)
        .with_columns(uid=pl.col("line").str.json_path_match("$.user_id"))
        .join(tags, left_on="uid", right_on="user_id", how="left")
        .join(state, left_on="uid", right_on="user_id", how="left")
        .with_columns(reason=reason)
        .sort("n")
        .select("n", "line", "reason")
        .collect()
    )

    kept = decided.filter(pl.col("reason").is_in(["consented", "not_protected"]))
    with gzip.open(os.path.join(a.out, "kept", name), "wb", compresslevel=6) as out:
        out.write(("\n".join(kept["line"].to_list()) + ("\n" if len(kept) else "")).encode())
    quarantined = decided.filter(pl.col("reason") == "unknown_jurisdiction").select(
        pl.concat_str(
            pl.lit('{"source":"' + name + '","line":'), pl.col("n").cast(pl.String),
            pl.lit(',"reason":"'), pl.col("reason"), pl.lit('","record":'),
            pl.col("line").str.strip_chars(" \t"), pl.lit("}"))
    )
    with gzip.open(os.path.join(a.out, "quarantine", name), "wb", compresslevel=6) as out:
        text = "\n".join(quarantined.to_series().to_list())
        out.write((text + ("\n" if len(quarantined) else "")).encode())

    reasons = dict(decided.group_by("reason").len().iter_rows())
    kept_n = reasons.get("consented", 0) + reasons.get("not_protected", 0)
    quarantined_n = reasons.get("unknown_jurisdiction", 0)
    total = sum(reasons.values())
    print(json.dumps({"records": total, "kept": kept_n, "quarantined": quarantined_n,
                      "dropped": total - kept_n - quarantined_n, "reasons": reasons},
                     sort_keys=True))


main()
