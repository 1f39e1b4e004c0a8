"""download@<dataset>: fetch the raw source into data/raw/<dataset>/.

DVC runs it when the dataset's params entry, its code or data/samples changes, or when asked
(`python -m vovnet update`, `dvc repro -f download@<name>`); see vovnet/data/download.py.
"""

import argparse

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import dataset_in, load_params, read_yaml
from vovnet.data.download import fetch
from vovnet.data.interfaces import Adapter
from vovnet.dvc_lock import params_match_lock
from vovnet.registry import get_adapter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--source", help="override datasets.<name>.source")
    ap.add_argument("--out", help="default data/raw/<dataset>")
    args = ap.parse_args()
    out = args.out or f"data/raw/{args.dataset}"
    cfg = dataset_in(load_params(args.params), args.dataset)
    entry = read_yaml(args.params)["datasets"][args.dataset]  # as params.yaml lists it, which dvc.lock records
    locked = not args.source and params_match_lock(f"download@{args.dataset}", f"datasets.{args.dataset}", entry)
    if args.source:
        cfg["source"] = args.source
    changed = fetch(args.dataset, cfg, out, get_adapter(cfg["adapter"], Adapter), locked=locked)
    print(f"download@{args.dataset}: {'fetched ' + cfg['source'] if changed else 'source unchanged, ' + out + ' kept'}")
    return 0


if __name__ == "__main__":
    cli.run(main)
