"""normalize@<dataset>: raw source -> data/processed/<dataset>/<dataset>_<split>.jsonl + image store."""

import argparse
import sys

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import dataset_config, dataset_in, load_params
from vovnet.data.interfaces import Adapter
from vovnet.data.normalize import normalize_dataset
from vovnet.io_utils import write_json
from vovnet.registry import get_adapter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--params", default="params.yaml")
    # The server guide's flags (docs/zh/): each overrides the params key of the same name for a run by hand;
    # its dashed spellings and comma lists (`--splits dev,test`) are accepted too.
    ap.add_argument("--max_samples", "--max-samples", type=int, help="questions per split, not rows (circular copies)")
    ap.add_argument("--subset")
    ap.add_argument("--splits", nargs="+", help="names, space- or comma-separated")
    ap.add_argument("--lang")
    ap.add_argument("--image_root", "--image-root")
    ap.add_argument("--download_images", "--download-images", type=cli.str2bool, nargs="?", const=True)
    ap.add_argument("--export_parquet", "--export-parquet", type=cli.str2bool, nargs="?", const=True)
    ap.add_argument("--streaming", type=cli.str2bool, nargs="?", const=True, help="accepted; hub files always stream")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--workers", type=lambda v: v if v == "auto" else int(v), help="a count, or auto (all cores)")
    ap.add_argument("--raw", help="default data/raw/<dataset>")
    ap.add_argument("--out", help="default data/processed/<dataset>")
    ap.add_argument("--stats", help="default metrics/normalize/<dataset>.json")
    args = ap.parse_args()
    if args.splits:
        args.splits = [name for arg in args.splits for name in arg.split(",") if name]
    if args.streaming:  # the guide's switch; here a hub folder is always read one row group at a time
        print("normalize: --streaming needs no switch here: hub files are always read by row group", file=sys.stderr)
    params = load_params(args.params)
    cfg = dataset_in(params, args.dataset)
    for key in ("max_samples", "subset", "splits", "lang", "image_root", "download_images"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg = dataset_config(args.dataset, cfg)  # re-validate after overrides
    norm = params["normalize"]
    stats = normalize_dataset(
        args.dataset,
        cfg,
        args.raw or f"data/raw/{args.dataset}",
        args.out or f"data/processed/{args.dataset}",
        adapter=get_adapter(cfg["adapter"], Adapter),
        seed=params["seed"] if args.seed is None else args.seed,
        max_image_pixels=norm["max_image_pixels"],
        workers=args.workers or norm["workers"],
        export_parquet=norm["export_parquet"] if args.export_parquet is None else args.export_parquet,
    )
    write_json(args.stats or f"metrics/normalize/{args.dataset}.json", stats)
    for split, s in stats["splits"].items():
        files = ", ".join(f"{f['name']} ({f['bytes']:,} B)" for f in s["source_files"])
        left = s["left_out_by_max_samples"]
        print(
            f"{args.dataset}/{split}: {s['rows']:,} rows from {files} -> {s['records']:,} records "
            f"({s['questions']:,} questions), {s['rejects']:,} rejects"
            + (
                f", {s['questions_left_out_by_max_samples']:,} questions ({left:,} rows) left out by max_samples "
                f"(it counts questions; circular copies stay together)"
                if left
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    cli.run(main)
