"""plot_training: the training curves (dvclive's TSVs) rendered offline as one PNG, a DVC image plot."""

import argparse
from pathlib import Path

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli, plots


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--metrics", default="dvclive/train/plots/metrics", help="dvclive's per-metric TSV folder")
    ap.add_argument("--out", default="plots/training.png")
    args = ap.parse_args()
    if not Path(args.metrics).is_dir():
        raise cli.VovnetError(f"{args.metrics}: no training curves (run the train stage first)")
    try:
        panels = plots.training_png(args.metrics, args.out)
    except ValueError as exc:
        raise cli.VovnetError(str(exc)) from None
    print(f"plot_training: {panels} curves -> {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
