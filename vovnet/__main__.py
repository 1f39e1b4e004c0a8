"""`python -m vovnet preset NAME` and `python -m vovnet doctor`."""
from __future__ import annotations

import argparse
import sys

from vovnet import VovnetError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vovnet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("preset", help="switch params.yaml to a preset: sample | fast_dev | paper")
    pr.add_argument("name")
    pr.add_argument("--params", default="params.yaml")
    dr = sub.add_parser("doctor", help="what is missing before a long run")
    dr.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "preset":
            from vovnet.presets import write_preset

            write_preset(args.name, args.params)
            print(f"params.yaml now uses the {args.name} preset; run `dvc repro`")
            return 0
        from vovnet.doctor import run_doctor

        return run_doctor(args.params)
    except VovnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
