"""`python -m vovnet.data export-images --dataset NAME --split SPLIT --out DIR` and `make-samples`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vovnet import VovnetError
from vovnet.config import processed_file
from vovnet.io_utils import read_jsonl


def export_images(dataset: str, split: str, out: str, root: str = "data/processed") -> int:
    from vovnet.data.image_store import ImageStore

    records = list(read_jsonl(processed_file(dataset, split, root)))
    shas_by_store: dict[str, set] = {}
    for rec in records:  # merged files point at their source dataset's store
        shas_by_store.setdefault(rec["dataset"], set()).update(im["sha256"] for im in rec["images"])
    return sum(ImageStore(Path(root) / ds).export(shas, out) for ds, shas in sorted(shas_by_store.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vovnet.data")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export-images", help="write <sha256>.<ext> files for one dataset split")
    ex.add_argument("--dataset", required=True)
    ex.add_argument("--split", required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--root", default="data/processed")
    ms = sub.add_parser("make-samples", help="regenerate the offline sample sources under data/samples/")
    ms.add_argument("--out", default="data/samples")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "export-images":
            n = export_images(args.dataset, args.split, args.out, args.root)
            print(f"wrote {n} images to {args.out}")
        else:
            from vovnet.data.samples import make_samples

            make_samples(args.out)
    except VovnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
