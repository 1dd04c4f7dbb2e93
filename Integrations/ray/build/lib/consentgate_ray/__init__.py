"""Run `consentgate filter` over a corpus as one Ray task per shard (SPEC §10).

Ray schedules and retries; consentgate makes every shard deterministic, idempotent and
mergeable: each task runs `consentgate filter --shard I/N` into one shared output folder,
and the driver then runs `consentgate merge-reports`. The consentgate binary must be on
PATH on every node, or given as an absolute path present on every node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ["run", "ShardFailed", "MergeRefused"]

# consentgate's own verdicts: 0 ok, 2 an input failed, 3 quarantine ratio. Anything else
# (a kill, a crash, an unwritable output) is worth a retry.
FINAL_EXITS = (0, 2, 3)


class ShardFailed(RuntimeError):
    """A shard's consentgate exited with a status Ray should retry (not 0, 2 or 3)."""


class MergeRefused(RuntimeError):
    """`consentgate merge-reports` wrote no report (the shards do not belong together)."""


@dataclass
class Result:
    report: Optional[dict]
    exit_code: int


def _binary(binary: Optional[str]) -> str:
    found = binary or shutil.which("consentgate")
    if not found:
        raise FileNotFoundError("consentgate not found on PATH; pass binary=/path/to/consentgate")
    return os.path.abspath(found) if os.path.sep in found else found


def _threads(filter_args: Sequence[str], default: int) -> int:
    """The --threads a filter command line gives, or `default`."""
    for k, arg in enumerate(filter_args):
        if arg == "--threads" and k + 1 < len(filter_args):
            return int(filter_args[k + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return default


def _shard_task(binary: str, args: list, cwd: str) -> int:
    """One shard: consentgate's exit status when it is final, else an exception (retried).
    Relative paths are the driver's: the task runs in the driver's folder where the node has
    it (shared storage), else in its own."""
    done = subprocess.run(
        [binary, "filter", *args], stderr=subprocess.PIPE, cwd=cwd if os.path.isdir(cwd) else None
    )
    tail = done.stderr.decode("utf-8", "replace")[-2000:]
    if done.returncode not in FINAL_EXITS:
        raise ShardFailed(f"consentgate exited {done.returncode}: {tail}")
    return done.returncode


def _run(
    shards: int,
    out: str,
    filter_args: Sequence[str],
    address: Optional[str] = None,
    binary: Optional[str] = None,
    max_retries: int = 3,
    threads: int = 1,
    node_ip_address: Optional[str] = None,
    log=sys.stderr,
) -> Result:
    import ray

    if shards < 1:
        raise ValueError("shards must be at least 1")
    exe = _binary(binary)
    args = list(filter_args)
    per_task = _threads(args, threads)
    if _threads(args, 0) == 0:
        args = ["--threads", str(per_task)] + args
    out = os.path.abspath(out)
    if not ray.is_initialized():
        extra = {"_node_ip_address": node_ip_address} if node_ip_address else {}
        ray.init(address=address, log_to_driver=False, include_dashboard=False, **extra)
    task = ray.remote(_shard_task).options(
        num_cpus=per_task, max_retries=max_retries, retry_exceptions=[ShardFailed]
    )
    started = time.monotonic()
    pending = {
        task.remote(exe, ["--quiet", "--out", out, "--shard", f"{i}/{shards}", *args], os.getcwd()): i
        for i in range(shards)
    }
    worst = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            code = ray.get(ready[0])
        except Exception as error:  # retries exhausted
            print(f"consentgate_ray: shard {i}/{shards} failed after retries: {error}", file=log)
            raise ShardFailed(f"shard {i}/{shards}") from error
        worst = max(worst, code)
        print(
            f"consentgate_ray: shard {i}/{shards} done, exit {code}, "
            f"{time.monotonic() - started:.1f}s, {shards - len(pending)}/{shards} shards",
            file=log,
        )
    merged = subprocess.run(
        [exe, "merge-reports", out, "--shards", str(shards)], stderr=subprocess.PIPE
    )
    if merged.returncode not in FINAL_EXITS or not os.path.exists(os.path.join(out, "report.json")):
        raise MergeRefused(merged.stderr.decode("utf-8", "replace").strip())
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    return Result(report, merged.returncode)


def run(
    shards: int,
    out: str,
    filter_args: Sequence[str],
    address: Optional[str] = None,
    binary: Optional[str] = None,
    max_retries: int = 3,
    threads: int = 1,
    node_ip_address: Optional[str] = None,
) -> dict:
    """Filters `filter_args` (options and inputs of `consentgate filter`, without --out and
    --shard) in `shards` Ray tasks into `out`, merges the shard reports and returns the
    merged report. Its exit status (0, 2 or 3, as one unsharded run) is the report's
    `_exit_code` key here, which the file on disk does not have."""
    result = _run(
        shards, out, filter_args, address, binary, max_retries, threads, node_ip_address
    )
    report = dict(result.report)
    report["_exit_code"] = result.exit_code
    return report
