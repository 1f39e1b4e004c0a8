"""DVC overhead of the image store vs loose files, 100,000 small JPEGs, measured side by side.

Both layouts hold the same images: (a) the store (one images.tar + images.index.json), (b) one file per
image. For each: `dvc add`, no-op `dvc status`, `dvc push` to a local remote, `dvc pull` into a fresh clone.

    python benchmarks/bench_dvc.py --images 100000
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import time
from pathlib import Path

ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}


def sh(cwd, *cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - t0


def small_jpegs(n: int):
    from PIL import Image

    base = io.BytesIO()
    Image.new("RGB", (24, 24), (120, 30, 200)).save(base, format="JPEG", quality=70)
    data = base.getvalue()
    for i in range(n):  # a COM segment makes each file distinct (~700 bytes each)
        payload = f"img {i}".encode()
        yield data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def build_store(folder: Path, n: int) -> None:
    import hashlib

    from vovnet.data.image_store import ImageStoreWriter

    w = ImageStoreWriter(folder)
    for data in small_jpegs(n):
        w.add(data, {"sha256": hashlib.sha256(data).hexdigest(), "format": "jpeg", "width": 24, "height": 24})
    w.close()


def build_loose(folder: Path, n: int) -> None:
    import hashlib

    folder.mkdir(parents=True)
    for data in small_jpegs(n):
        (folder / f"{hashlib.sha256(data).hexdigest()}.jpg").write_bytes(data)


def measure(layout: str, n: int, tmp: Path) -> dict:
    repo, remote, clone = tmp / f"{layout}-repo", tmp / f"{layout}-remote", tmp / f"{layout}-clone"
    repo.mkdir()
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "remote", "add", "-d", "store", str(remote))
    (build_store if layout == "store" else build_loose)(repo / "images", n)
    r = {"add": sh(repo, "dvc", "add", "images")}
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "images")
    r["status"] = min(sh(repo, "dvc", "status") for _ in range(3))
    r["push"] = sh(repo, "dvc", "push")
    sh(tmp, "git", "clone", "-q", str(repo), str(clone))
    r["pull"] = sh(clone, "dvc", "pull")
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vovnet-bench-dvc-") as tmp:
        store = measure("store", args.images, Path(tmp))
        loose = measure("loose", args.images, Path(tmp))
    targets = {"add": None, "status": 1.0, "push": None, "pull": 5.0}
    print(f"{args.images} images | {'op':>6} {'store s':>8} {'loose s':>8} {'speedup':>8} {'target':>14} {'met':>4}")
    for op in ("add", "status", "push", "pull"):
        t, speed = targets[op], loose[op] / store[op]
        goal = f"<= {t:.0f} s" + (", >=10x" if op == "pull" else "") if t else "-"
        met = "-" if not t else ("yes" if store[op] <= t and (op != "pull" or speed >= 10) else "no")
        print(
            f"{'':>{len(str(args.images)) + 9}}| {op:>6} {store[op]:>8.2f} {loose[op]:>8.2f} {speed:>7.1f}x {goal:>14} {met:>4}"
        )


if __name__ == "__main__":
    main()
