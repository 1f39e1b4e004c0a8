"""File fingerprints (name, size, sha256), with hashes cached by path, size and mtime.

`download` fingerprints a source to notice a change, and remembers the hashes of the files it writes;
`normalize` reports the sha256 of every file it reads and takes them from the same cache, so an
unchanged file is hashed once. The cache lives next to the raw folders (`data/raw/.source-stat/`),
outside every DVC output, and is git-ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHUNK = 1 << 20
STAT_CACHE = ".source-stat"
RECORD = "SOURCE.json"  # download's record in each raw folder: what was fetched, every file's sha256


class StatCache:
    """sha256 of files by (path, size, mtime): an unchanged source is re-checked with stat() alone."""

    def __init__(self, raw_dir: Path):
        self.path = raw_dir.parent / STAT_CACHE / f"{raw_dir.name}.json"
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.seen: dict[str, list] = {}

    def sha256(self, f: Path, st: os.stat_result) -> str:
        key = str(f.resolve())
        hit = self.entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            digest = hit[2]
        else:
            digest = sha256_file(f)
        self.seen[key] = [st.st_size, st.st_mtime_ns, digest]
        return digest

    def remember(self, folder: Path, files: list[dict]) -> None:
        """Hashes known for files just written (a copy, a download): the next reader need not re-hash."""
        for f in files:
            p = folder / f["name"]
            st = p.stat()
            if st.st_size == f["bytes"]:
                self.seen[str(p.resolve())] = [st.st_size, st.st_mtime_ns, f["sha256"]]

    def save(self) -> None:
        """Keep the entries of files that still exist (a stat each), plus those seen this run."""
        kept = {k: v for k, v in self.entries.items() if k not in self.seen and os.path.exists(k)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({**kept, **self.seen}, sort_keys=True))
        os.replace(tmp, self.path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: Path, stats: StatCache | None, skip: tuple[str, ...] = ()) -> list[dict]:
    """Sorted name, size and sha256 of every file under path (or of the one file)."""
    if path.is_file():
        files, base = [path], path.parent
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and ".cache" not in p.relative_to(path).parts
            and "__pycache__" not in p.parts
            and p.name not in skip
        )
        base = path
    out = []
    for f in files:
        st = f.stat()
        digest = stats.sha256(f, st) if stats is not None else sha256_file(f)
        out.append({"name": f.relative_to(base).as_posix(), "bytes": st.st_size, "sha256": digest})
    return out
