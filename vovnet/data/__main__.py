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

    path = processed_file(dataset, split, root)
    if not path.exists():
        raise VovnetError(_unknown(dataset, split, Path(root)))
    records = list(read_jsonl(path))
    shas_by_store: dict[str, set] = {}
    for rec in records:  # merged files point at their source dataset's store
        shas_by_store.setdefault(rec["dataset"], set()).update(im["sha256"] for im in rec["images"])
    return sum(ImageStore(Path(root) / ds).export(shas, out) for ds, shas in sorted(shas_by_store.items()))


def _unknown(dataset: str, split: str, root: Path) -> str:
    """Name what is missing and list what there is."""
    have = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if dataset not in have:
        return (
            f"no processed dataset {dataset!r} under {root} (have: {', '.join(have) or 'none'}; "
            "run `dvc pull` or `dvc repro`)"
        )
    splits = sorted(p.name[len(dataset) + 1 : -len(".jsonl")] for p in (root / dataset).glob(f"{dataset}_*.jsonl"))
    return f"dataset {dataset!r} has no split {split!r} (have: {', '.join(splits) or 'none'})"


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
            from vovnet.data.interfaces import SampleMaker
            from vovnet.data.samples import make_samples
            from vovnet.registry import SAMPLES, get_sample_maker

            make_samples({name: get_sample_maker(name, SampleMaker) for name in SAMPLES}, args.out)
    except VovnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
