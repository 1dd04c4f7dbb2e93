#!/usr/bin/env python3
"""The same job as one DuckDB query (single-threaded here: 2 cores, and the gzip input is
one stream), writing gzip with DuckDB's own writer.

  duckdb_filter.py --consent C --jurisdictions J --cutoff T --out DIR INPUT

Prints the counts as JSON, like python_filter.py."""
import json
import os
import sys

import duckdb

sys.path.insert(0, os.path.dirname(__file__))
from common import EEA, OUTSIDE, arguments  # noqa: E402


def main():
    a = arguments(1)
    name = os.path.basename(a.inputs[0])
    for d in ("kept", "quarantine"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    eea = ", ".join(f"'{c}'" for c in sorted(EEA))
    outside = ", ".join(f"'{c}'" for c in sorted(OUTSIDE))
    cutoff = f"TIMESTAMPTZ '{a.cutoff}'"
    con.execute(f"""
      CREATE TEMP TABLE state AS
      WITH ev AS (
        SELECT user_id, lower(status) AS s,
          CASE WHEN regexp_full_match(recorded_at, '[0-9]+') THEN to_timestamp(recorded_at::BIGINT)
               ELSE recorded_at::TIMESTAMPTZ END AS t,
          NULLIF(expires_at, '') AS ex
        FROM read_csv('{a.consent}', header = true, all_varchar = true)
        WHERE purpose = 'ai_training'),
      judged AS (
        SELECT user_id, t,
          CASE WHEN s = 'granted' AND ex IS NOT NULL AND ex::TIMESTAMPTZ <= {cutoff} THEN 'consent_expired'
               WHEN s = 'granted' THEN 'valid' ELSE s END AS state
        FROM ev WHERE t <= {cutoff})
      SELECT user_id, state FROM judged
      QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY t DESC,
        CASE state WHEN 'objected' THEN 5 WHEN 'withdrawn' THEN 4 WHEN 'consent_expired' THEN 3 ELSE 1 END DESC) = 1
    """)
    con.execute(f"""
      CREATE TEMP TABLE tags AS
      WITH codes AS (
        SELECT user_id, CASE c WHEN 'EL' THEN 'GR' WHEN 'UK' THEN 'GB' ELSE c END AS c
        FROM (SELECT user_id, upper(trim(coalesce(country, ''), E' \\t')) AS c
              FROM read_csv('{a.jurisdictions}', header = true, all_varchar = true)))
      SELECT user_id,
        bool_or(c <> '' AND c NOT IN ({outside}) AND split_part(c, '-', 1) IN ({eea})) AS prot,
        bool_or(c <> '') AS valid
      FROM codes GROUP BY user_id
    """)
    con.execute(f"""
      CREATE TEMP TABLE decided AS
      WITH recs AS (
        SELECT json::VARCHAR AS line, row_number() OVER () AS n,
               json_extract_string(json, '$.user_id') AS uid
        FROM read_json_objects('{a.inputs[0]}', format = 'newline_delimited', compression = 'gzip'))
      SELECT line, n,
        CASE WHEN t.user_id IS NULL OR NOT t.valid THEN 'unknown_jurisdiction'
             WHEN s.state = 'objected' THEN 'objected'
             WHEN t.prot AND coalesce(s.state, 'no_consent') <> 'valid' THEN coalesce(s.state, 'no_consent')
             WHEN t.prot THEN 'consented'
             ELSE 'not_protected' END AS reason
      FROM recs LEFT JOIN tags t ON t.user_id = recs.uid LEFT JOIN state s ON s.user_id = recs.uid
    """)
    opts = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER E'\\x01', COMPRESSION gzip)"
    con.execute(f"""COPY (SELECT line FROM decided WHERE reason IN ('consented', 'not_protected')
                   ORDER BY n) TO '{os.path.join(a.out, "kept", name)}' {opts}""")
    con.execute(f"""COPY (SELECT '{{"source":"{name}","line":' || n || ',"reason":"' || reason
                   || '","record":' || line || '}}' FROM decided
                   WHERE reason = 'unknown_jurisdiction' ORDER BY n)
                   TO '{os.path.join(a.out, "quarantine", name)}' {opts}""")
    reasons = dict(con.execute("SELECT reason, count(*) FROM decided GROUP BY reason").fetchall())
    kept = reasons.get("consented", 0) + reasons.get("not_protected", 0)
    quarantined = reasons.get("unknown_jurisdiction", 0)
    total = sum(reasons.values())
    print(json.dumps({"records": total, "kept": kept, "quarantined": quarantined,
                      "dropped": total - kept - quarantined, "reasons": reasons}, sort_keys=True))


main()
