"""download@<dataset>: fetch the raw source into data/raw/<dataset>/.

DVC runs it on every repro (always_changed): when nothing it read last time changed (stat() only, see
vovnet/data/noop_check.py), it exits before importing the params schema or any hub client.
"""

import argparse
import sys

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.data.noop_check import NoopCheck


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--source", help="override datasets.<name>.source")
    ap.add_argument("--out", help="default data/raw/<dataset>")
    args = ap.parse_args()
    out = args.out or f"data/raw/{args.dataset}"
    check = NoopCheck(args.dataset, out, sys.argv[1:], args.params)
    if check.unchanged():
        print(f"download@{args.dataset}: nothing changed since the last check (stat), {out} kept")
        return 0
    from vovnet.config import dataset_in, load_params
    from vovnet.data.download import fetch, watched_paths

    params = load_params(args.params)
    cfg = dataset_in(params, args.dataset)
    if args.source:
        cfg["source"] = args.source
    changed = fetch(args.dataset, cfg, out)
    check.save(watched_paths(args.dataset, cfg, out))
    print(f"download@{args.dataset}: {'fetched ' + cfg['source'] if changed else 'source unchanged, ' + out + ' kept'}")
    return 0


if __name__ == "__main__":
    cli.run(main)
