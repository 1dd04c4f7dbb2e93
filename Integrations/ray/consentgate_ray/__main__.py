"""python -m consentgate_ray --address ADDR --shards N --out DIR [--binary PATH] -- FILTER-OPTIONS INPUT..."""

import argparse
import sys

from . import MergeRefused, ShardFailed, _run


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m consentgate_ray [options] -- FILTER-OPTIONS INPUT...", file=sys.stderr)
        return 64
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m consentgate_ray")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start or find one)")
    parser.add_argument("--shards", type=int, required=True, help="number of shards (Ray tasks)")
    parser.add_argument("--out", required=True, help="the shared output folder")
    parser.add_argument("--binary", default=None, help="consentgate on every node (default: PATH)")
    parser.add_argument("--threads", type=int, default=1, help="threads (and Ray CPUs) per shard")
    parser.add_argument("--max-retries", type=int, default=3, help="retries of a failed shard")
    parser.add_argument("--node-ip-address", default=None, help="this driver's address in the cluster")
    try:
        options = parser.parse_args(argv[:split])
    except SystemExit:
        return 64
    try:
        result = _run(
            options.shards, options.out, argv[split + 1 :], options.address, options.binary,
            options.max_retries, options.threads, options.node_ip_address,
        )
    except MergeRefused as refusal:
        print(f"consentgate_ray: merge-reports refused: {refusal}", file=sys.stderr)
        return 2
    except ShardFailed as failure:
        print(f"consentgate_ray: {failure}", file=sys.stderr)
        return 70
    except (FileNotFoundError, ValueError) as error:
        print(f"consentgate_ray: {error}", file=sys.stderr)
        return 64
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
