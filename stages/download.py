"""download@<dataset>: fetch the raw source into data/raw/<dataset>/."""
import argparse

from vovnet import cli
from vovnet.config import dataset_in, load_params
from vovnet.data.download import fetch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--source", help="override datasets.<name>.source")
    ap.add_argument("--out", help="default data/raw/<dataset>")
    args = ap.parse_args()
    params = load_params(args.params)
    cfg = dataset_in(params, args.dataset)
    if args.source:
        cfg["source"] = args.source
    out = args.out or f"data/raw/{args.dataset}"
    changed = fetch(args.dataset, cfg, out)
    print(f"download@{args.dataset}: {'fetched ' + cfg['source'] if changed else 'source unchanged, ' + out + ' kept'}")
    return 0


if __name__ == "__main__":
    cli.run(main)
