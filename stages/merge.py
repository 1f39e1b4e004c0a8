"""merge: the training mix (train/val) and the held-out evaluation part, with the leakage guard."""

import argparse

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import load_params
from vovnet.data.merge import merge, write_merged
from vovnet.io_utils import write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default="data/processed")
    ap.add_argument("--merge", type=cli.str2bool, help="override merge.enabled")
    ap.add_argument("--stats", default="metrics/merge.json")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg = dict(params["merge"])
    if args.merge is not None:
        cfg["enabled"] = args.merge
    out, stats = merge(cfg, params["seed"], args.root)
    write_merged(out, cfg["name"], args.root)
    write_json(args.stats, stats)
    print(
        f"merge: train {stats['train']}, val {stats['val']}, heldout {stats['heldout']}, "
        f"duplicates dropped {stats['duplicates_dropped']}"
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
