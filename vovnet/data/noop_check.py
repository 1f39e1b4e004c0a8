"""download@'s no-op check: nothing it reads changed since its last run, decided with stat() and the
standard library only (no params schema, no hub client), so an always-changed stage costs a process start.

After each full run, download writes a signature: the hash of params.yaml's bytes, the command line, the
VOVNET_* environment (overrides of the source), and the name, size and mtime of every file under each
watched tree (the local source, an image_root outside the raw folder, the raw folder itself) and of
every project module the run loaded. The next run recomputes it first; equal means unchanged. Anything
else (an edit in place, a new or removed file, any params edit, a code change) runs the full check,
which decides by content (download.fetch) and writes the signature again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from vovnet.data.fingerprint import STAT_CACHE  # stdlib only as well

ROOT = Path(__file__).resolve().parents[2]


def _tree(path: Path, digest) -> None:
    """Feed every file's relative name, size and mtime under path (or the one file) into digest."""
    if path.is_file():
        st = path.stat()
        digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return
    digest.update(f"{path}\0{'dir' if path.is_dir() else 'missing'}\n".encode())
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in (".cache", "__pycache__"))
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), path)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())


def loaded_modules() -> list[str]:
    """The project's files this process imported (the code a full check ran)."""
    out = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and Path(f).resolve().is_relative_to(ROOT):
            out.add(Path(f).resolve().relative_to(ROOT).as_posix())
    return sorted(out)


class NoopCheck:
    """The signature of one download@ stage (data/raw/.source-stat/<name>.noop.json)."""

    def __init__(self, name: str, raw_dir: str | Path, argv: list[str], params: str | Path = "params.yaml"):
        self.raw_dir, self.argv, self.params = Path(raw_dir), list(argv), Path(params)
        self.path = self.raw_dir.parent / STAT_CACHE / f"{name}.noop.json"

    def signature(self, watched: list[str], code: list[str]) -> str:
        digest = hashlib.sha256()
        overrides = sorted((k, v) for k, v in os.environ.items() if k.startswith("VOVNET_"))
        digest.update(json.dumps([self.argv, overrides]).encode())
        digest.update(hashlib.sha256(self.params.read_bytes()).digest() if self.params.is_file() else b"no params")
        for tree in watched:
            _tree(Path(tree), digest)
        for rel in code:
            _tree(ROOT / rel, digest)
        return digest.hexdigest()

    def unchanged(self) -> bool:
        """Whether nothing changed since the last full run (False when there was none)."""
        try:
            saved = json.loads(self.path.read_text())
            return saved["signature"] == self.signature(saved["watched"], saved["code"])
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def save(self, watched: list[str | Path]) -> None:
        """After a full run: remember what it read, for the next run's stat-only check."""
        watched = sorted({str(w) for w in watched} | {str(self.raw_dir)})
        code = loaded_modules()
        record = {"signature": self.signature(watched, code), "watched": watched, "code": code}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
