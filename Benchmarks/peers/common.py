"""What the peer scripts share: the policy consentgate runs with by default, restricted to
the data `consentgate generate --clean` writes (no broken lines, duplicate keys, lone
surrogates or invalid country codes). Written from SPEC §3 for the comparison only."""

import argparse

EU = set("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA = EU | {"IS", "LI", "NO"}
ALIASES = {"EL": "GR", "UK": "GB", "FX": "FR"}
# Subdivisions of member states that lie outside the Union resolve to their own territory.
OUTSIDE = set("FR-BL FR-NC FR-PF FR-PM FR-TF FR-WF NL-AW NL-CW NL-SX NL-BQ1 NL-BQ2 NL-BQ3".split())
RANK = {"objected": 5, "withdrawn": 4, "consent_expired": 3, "valid": 1}


def country_signal(raw):
    """'protected', 'not' or None (no signal) for a tag's country text."""
    code = raw.strip(" \t").upper()
    if not code:
        return None
    code = ALIASES.get(code, code)
    if "-" in code:
        if code in OUTSIDE:
            return "not"
        code = ALIASES.get(code.split("-")[0], code.split("-")[0])
    return "protected" if code in EEA else "not"


def arguments(inputs_nargs):
    """The command line both peers take: side files, cutoff, output folder, inputs."""
    p = argparse.ArgumentParser()
    p.add_argument("--consent", required=True)
    p.add_argument("--jurisdictions", required=True)
    p.add_argument("--cutoff", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("inputs", nargs=inputs_nargs)
    return p.parse_args()
