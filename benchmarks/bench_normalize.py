"""Normalize vs its floor: MMBench-style TSVs (photo-like JPEGs, circular copies) or TextVQA-shaped parquet.

The floor is the least any normalizer must do, streaming: read the TSV (base64-decode each image cell),
or the parquet row groups (the image column), sha256 each image and write the bytes. Each measurement
runs in its own process so peak RSS is its own; floor and normalize run back to back, `--repeats` times,
and the best of each is compared (the least disturbed by other load on a shared machine).

    python benchmarks/bench_normalize.py --format tsv --sizes 1000 10000 50000 --workers auto 1
    python benchmarks/bench_normalize.py --format textvqa --sizes 1000 5000 --workers auto
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vovnet.data.mmbench_layout import TSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
csv.field_size_limit(sys.maxsize)
COLUMNS = list(TSV_COLUMNS)


def photo_jpegs(n_variants: int, size=(320, 240), seed=0) -> list[bytes]:
    """Noisy gradients: JPEGs that compress like photos (~30 KB), not like flat colour."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_variants):
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        base = np.stack(
            [(x * rng.uniform(0.3, 1)) % 256, (y * rng.uniform(0.3, 1)) % 256, ((x + y) * rng.uniform(0.2, 0.6)) % 256],
            -1,
        )
        arr = np.clip(base + rng.normal(0, 28, base.shape), 0, 255).astype("uint8")
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def unique_jpeg(data: bytes, i: int) -> bytes:
    """A distinct, valid JPEG per row: a COM segment with the row number right after SOI."""
    payload = f"row {i}".encode()
    return data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def write_tsv(path: Path, n_rows: int, seed: int = 0) -> None:
    """N rows: originals with their image, each followed by 3 circular copies referring to it by index."""
    variants = photo_jpegs(64, seed=seed)
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        written, q = 0, 1
        while written < n_rows:
            img = base64.b64encode(unique_jpeg(variants[q % len(variants)], q)).decode()
            opts = ["alpha", "beta", "gamma", "delta"]
            for k in range(min(4, n_rows - written)):
                rot = opts[k:] + opts[:k]
                w.writerow(
                    [
                        q + k * 1_000_000,
                        f"Question {q}?",
                        "",
                        *rot,
                        "ABCD"[rot.index("alpha")],
                        "cat",
                        img if k == 0 else str(q),
                        "bench",
                        "l2",
                        "",
                        "dev",
                    ]
                )
                written += 1
            q += 1
            rng.random()


TEXTVQA_ROW_GROUP = 100  # rows per row group, as `datasets` wrote image datasets (lmms-lab/textvqa's upload)


def write_textvqa(folder: Path, n_rows: int, seed: int = 0) -> None:
    """A TextVQA-shaped parquet folder (lmms-lab/textvqa layout): one distinct ~90 KB photo-like JPEG per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    variants = photo_jpegs(64, size=(512, 384), seed=seed)
    (folder / "data").mkdir(parents=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [
            ("question_id", pa.int64()),
            ("question", pa.string()),
            ("image", image_type),
            ("answers", pa.list_(pa.string())),
        ],
        metadata={
            "huggingface": json.dumps(
                {
                    "info": {
                        "features": {
                            "question_id": {"dtype": "int64", "_type": "Value"},
                            "question": {"dtype": "string", "_type": "Value"},
                            "image": {"_type": "Image"},
                            "answers": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
                        }
                    }
                }
            )
        },
    )
    with pq.ParquetWriter(folder / "data" / "validation-00000-of-00001.parquet", schema) as w:
        for start in range(0, n_rows, TEXTVQA_ROW_GROUP):
            ids = list(range(start, min(n_rows, start + TEXTVQA_ROW_GROUP)))
            w.write_table(
                pa.table(
                    {
                        "question_id": ids,
                        "question": [f"What is written? {i}" for i in ids],
                        "image": [{"bytes": unique_jpeg(variants[i % 64], i), "path": None} for i in ids],
                        "answers": [[f"word{i}"] * 10 for i in ids],
                    },
                    schema=schema,
                )
            )


def floor_parquet(folder: Path, out_dir: Path, verify=None) -> None:
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "blob.bin", "wb") as out:
        for f in sorted(folder.rglob("*.parquet")):
            # streaming: pyarrow's default pre-buffering would keep every row group read in memory
            pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
            for batch in pf.iter_batches(batch_size=64, columns=["image"]):
                for cell in batch.column(0).to_pylist():
                    hashlib.sha256(cell["bytes"]).hexdigest()
                    if verify:
                        verify(cell["bytes"])
                    out.write(cell["bytes"])


def floor(tsv: Path, out_dir: Path, verify=None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(tsv, encoding="utf-8", newline="") as fh, open(out_dir / "blob.bin", "wb") as out:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        col = header.index("image")
        for cells in reader:
            cell = cells[col]
            if len(cell) > 64:
                data = base64.b64decode(cell)
                hashlib.sha256(data).hexdigest()
                if verify:
                    verify(data)
                out.write(data)


def normalize(src: Path, out_dir: Path, workers) -> None:
    from vovnet.config import dataset_config
    from vovnet.data.interfaces import Adapter
    from vovnet.data.normalize import normalize_dataset
    from vovnet.registry import get_adapter

    if src.is_dir():  # a TextVQA-shaped parquet folder
        cfg = dataset_config("textvqa", {"source": str(src), "splits": ["validation"]})
        normalize_dataset(
            "textvqa",
            cfg,
            src,
            out_dir,
            adapter=get_adapter("textvqa", Adapter),
            seed=0,
            max_image_pixels=89_478_485,
            workers=workers,
        )
        return
    cfg = dataset_config("mmbench", {"source": str(src.parent), "splits": ["dev"]})
    adapter = get_adapter("mmbench", Adapter)
    normalize_dataset(
        "mmbench", cfg, src.parent, out_dir, adapter=adapter, seed=0, max_image_pixels=89_478_485, workers=workers
    )


def peak_rss_mb() -> float:
    """VmHWM: this process's own high-water mark (ru_maxrss would include the parent's, kept over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, tsv: str, out: str, workers) -> None:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    import pyarrow.parquet  # noqa: F401  (interpreter and import time are not the work measured)

    import vovnet.data.image_store  # noqa: F401

    if kind != "floor":
        import vovnet.data.normalize  # noqa: F401
        import vovnet.tasks.textvqa.adapter  # noqa: F401
    verify = None
    if kind == "floor+decode":  # the floor plus the image check normalize must make (one thread)
        from vovnet.data.image_store import inspect_image

        verify = inspect_image
    t0 = time.perf_counter()
    if kind.startswith("floor"):
        (floor_parquet if Path(tsv).is_dir() else floor)(Path(tsv), Path(out), verify)
    else:
        normalize(Path(tsv), Path(out), workers)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_rss_mb()}))


def run_once(kind: str, src: Path, out: Path, workers="auto") -> dict:
    p = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(src), str(out), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(p.stdout.strip().splitlines()[-1])


def worker_arg(text: str):
    return text if text == "auto" else int(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--workers", type=worker_arg, nargs="+", default=["auto"])
    ap.add_argument("--format", choices=["tsv", "textvqa"], default="tsv")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, tsv, out, workers = args.child
        child(kind, tsv, out, worker_arg(workers))
        return
    sizes = args.sizes or ([1000, 5000] if args.format == "textvqa" else [1000, 10000, 50000])
    rss_target = 300 if args.format == "textvqa" else 150
    print(
        f"{'N':>7} {'MB':>7} {'floor s':>8} {'floor MB':>9} {'+decode s':>9} {'workers':>7} {'norm s':>7} "
        f"{'norm MB':>8} {'ratio':>6} {'vs+dec':>6} {'target':>13} {'met':>4}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="vovnet-bench-") as tmp:
            source, raw = Path(tmp) / "source", Path(tmp) / "raw"
            if args.format == "textvqa":
                write_textvqa(source, n)
                src = raw
            else:
                source.mkdir()
                write_tsv(source / "MMBench_DEV_EN.tsv", n)
                src = raw / "MMBench_DEV_EN.tsv"
            # As in the pipeline: download@ copies the source into the raw folder and hashes it (not
            # timed); normalize then reports those hashes instead of reading every file a second time.
            from vovnet.config import dataset_config
            from vovnet.data.download import fetch

            fetch("bench", dataset_config("bench", {"adapter": "textvqa", "source": str(source)}), raw)
            size_mb = sum(f.stat().st_size for f in raw.rglob("*") if f.suffix in (".parquet", ".tsv")) / 2**20
            for w in args.workers:
                floors, decodes, norms = [], [], []
                for _ in range(args.repeats):  # all sides back to back, so load on the machine hits each
                    floors.append(run_once("floor", src, Path(tmp) / "floor"))
                    decodes.append(run_once("floor+decode", src, Path(tmp) / "floor"))
                    norms.append(run_once("normalize", src, Path(tmp) / "norm", w))
                dec = min(r["wall_s"] for r in decodes)
                fl = {"wall_s": min(r["wall_s"] for r in floors), "peak_rss_mb": max(r["peak_rss_mb"] for r in floors)}
                nm = {"wall_s": min(r["wall_s"] for r in norms), "peak_rss_mb": max(r["peak_rss_mb"] for r in norms)}
                ratio = nm["wall_s"] / fl["wall_s"]
                met = ratio <= 2.0 and nm["peak_rss_mb"] < rss_target
                print(
                    f"{n:>7} {size_mb:>7.1f} {fl['wall_s']:>8.2f} {fl['peak_rss_mb']:>9.1f} {dec:>9.2f} {str(w):>7} "
                    f"{nm['wall_s']:>7.2f} {nm['peak_rss_mb']:>8.1f} {ratio:>6.2f} {nm['wall_s'] / dec:>6.2f} "
                    f"{f'<=2x,<{rss_target}MB':>13} {'yes' if met else 'no':>4}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
