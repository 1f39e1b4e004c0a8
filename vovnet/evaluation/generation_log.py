"""Resumable generation: each process appends every batch it generates to its own durable log, so a rerun of
a killed evaluation generates only what the logs lack.

An entry is one batch (batch composition changes padding, hence the bytes): its key hashes the model's files,
the decoding settings and, per record in order, the record and its encoded prompts. The logs of one setting
live in one folder under the workspace that owns this checkout (an experiment's temporary copy shares it),
outside DVC's outputs. Each writer appends to its own file under an exclusive lock, one line per write,
flushed and fsynced before the batch counts as done; a reader reads every file of the folder (any process
count), up to its first torn or corrupt line."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path

from vovnet import VovnetError
from vovnet.io_utils import dumps
from vovnet.resume import workspace_of

log = logging.getLogger("vovnet.evaluate")
SETTINGS_FILE = "settings.json"
DIGESTS_FILE = "file_digests.json"  # in the generation log folder: large model files' hashes (file_sha256)
CACHED_FROM = 64 << 20
IDENTITY = ("kind", "variant")  # what a log generates; the rest of its settings say how


def file_sha256(f: Path, cache: dict) -> str:
    """One file's sha256; a file of CACHED_FROM bytes or more is read once per (path, size, mtime, inode), as
    DVC's own state database does, so a 16 GB checkpoint is not hashed again by every evaluate@."""
    st = f.stat()
    key = f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    if st.st_size >= CACHED_FROM and key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if st.st_size >= CACHED_FROM:
        cache[key] = h.hexdigest()
    return h.hexdigest()


def files_digest(path: str | Path, cache: dict) -> str:
    """A model by the content of its files (a hub id that is not a local folder: by its name)."""
    root = Path(path).expanduser()
    h = hashlib.sha256()
    if not root.exists():
        h.update(f"hub:{path}".encode())
        return h.hexdigest()
    for f in sorted(p for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()):
        name = f.relative_to(root) if f != root else f.name
        h.update(f"{name}\0{f.stat().st_size}\0{file_sha256(f, cache)}\0".encode())
    return h.hexdigest()


def _load_digests(path: Path) -> dict:
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or torn: every large file is hashed again
    return cached if isinstance(cached, dict) else {}


def _save_digests(path: Path, cache: dict) -> None:
    """Write the cache; where it cannot be written, say so and go on (the next run hashes again)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")  # one per process: ranks write side by side
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot save the model files' digests to %s (%s); they are hashed again next run", path, exc)
        tmp.unlink(missing_ok=True)


def generation_settings(ecfg: dict, mcfg: dict, vision_budget: dict, base_model: str, device: str) -> dict:
    """The model (its files: trained folder, base, Thinking model), its dtype and device, and the decoding
    settings; evaluation.seed and the process count do not change a greedy answer. The large files' hashes
    are cached in the generation log folder (file_sha256)."""
    full = mcfg["full_model_name"] if mcfg["use_thinking_for_full"] else None
    digests = log_root(ecfg["generation_log"], DIGESTS_FILE)
    cache = _load_digests(digests)
    known = dict(cache)
    models = {
        "model_dir": files_digest(ecfg["model_dir"], cache),
        "base_model": files_digest(base_model, cache),
        "full_model": files_digest(full, cache) if full else None,
    }
    if cache != known:
        _save_digests(digests, cache)
    return {
        **models,
        "dtype": mcfg["dtype"],
        "device": device,
        "vision_budget": vision_budget,
        "max_new_tokens": ecfg["max_new_tokens"],
        "thinking_max_new_tokens": ecfg["thinking_max_new_tokens"],
        "max_length": ecfg["max_length"],
    }


def settings_digest(settings: dict) -> str:
    return hashlib.sha256(dumps(settings).encode()).hexdigest()[:16]


def batch_key(records: list[dict], encodings: list) -> str:
    """The batch: each record and its encoded prompts (token ids per action), in order."""
    h = hashlib.sha256()
    for rec, enc in zip(records, encodings):
        h.update(dumps(rec).encode())
        h.update(dumps(prompt_ids(enc)).encode())
    return h.hexdigest()


def prompt_ids(enc) -> object:
    """The token ids of an encoding (one action's dict or every action's), tensors as lists."""
    if isinstance(enc, dict):
        if "input_ids" in enc:
            ids = enc["input_ids"]
            return ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return {k: prompt_ids(v) for k, v in sorted(enc.items())}
    return enc


def entry_line(key: str, ids: list[str], results: list) -> bytes:
    body = dumps({"key": key, "ids": ids, "results": results})
    return (dumps({"sha256": hashlib.sha256(body.encode()).hexdigest(), "entry": json.loads(body)}) + "\n").encode()


def parse_entry(line: bytes) -> dict | None:
    """The entry of one whole line, None when it is torn or corrupt (bad JSON, checksum mismatch)."""
    try:
        doc = json.loads(line)
        body = dumps(doc["entry"])
    except (ValueError, KeyError, TypeError):
        return None
    if hashlib.sha256(body.encode()).hexdigest() != doc.get("sha256"):
        return None
    return doc["entry"]


def read_log(path: Path) -> tuple[list[dict], int, int]:
    """(entries up to the first torn or corrupt line, lines dropped from there, bytes of the valid part)."""
    data = path.read_bytes()
    entries, valid = [], 0
    lines = data.split(b"\n")
    for n, line in enumerate(lines[:-1]):  # the last piece has no newline: empty, or a torn write
        entry = parse_entry(line)
        if entry is None:
            return entries, len(lines) - n - (1 if not lines[-1] else 0), valid
        entries.append(entry)
        valid += len(line) + 1
    return entries, (1 if lines[-1] else 0), valid


class GenerationLog:
    """The logged batches of one setting, and this process's own append-only file."""

    def __init__(self, root: Path, settings: dict, writer: str, what: str):
        self.folder = root / settings_digest(settings)
        self.path = self.folder / f"{writer}.jsonl"
        self.what = what
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        self.done: dict[str, list] = {}
        self.generated = self.reused = 0
        self._name_other_settings(root, settings)
        self._load()

    def _name_other_settings(self, root: Path, settings: dict) -> None:
        """Name the logs of the same generation under other settings (a retrained model, other decoding),
        not those of the other kinds and variants that share the root."""
        mine = json.loads(dumps({k: settings.get(k) for k in IDENTITY}))  # as settings.json reads back
        others = []
        for p in sorted(q for q in root.iterdir() if q.is_dir() and q != self.folder):
            try:
                theirs = json.loads((p / SETTINGS_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                theirs = {}  # no readable settings: named, since it could be this generation's
            if not isinstance(theirs, dict) or all(theirs.get(k) == v for k, v in mine.items()) or not theirs:
                others.append(p.name)
        if others:
            log.info(
                "%s: ignoring generation logs of other settings in %s: %s (model, prompts or decoding differ)",
                self.what,
                root,
                ", ".join(others),
            )

    def _load(self) -> None:
        self._repair_own()
        for f in sorted(self.folder.glob("*.jsonl")):
            entries, dropped, _ = read_log(f)
            if dropped:
                log.warning("%s: %s: used up to a torn or corrupt line, %d line(s) dropped", self.what, f, dropped)
            for e in entries:
                self.done[e["key"]] = e["results"]
        if self.done:
            log.info("%s: %d logged batch(es) in %s", self.what, len(self.done), self.folder)

    def _repair_own(self) -> None:
        """Cut this writer's file back to its last whole entry, so what it appends starts a line."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            _, dropped, valid = read_log(self.path)
            if dropped:
                log.warning(
                    "%s: %s: used up to a torn or corrupt line, %d line(s) dropped", self.what, self.path, dropped
                )
                fh.truncate(valid)
                os.fsync(fh.fileno())

    def counts(self) -> tuple[int, int]:
        """(batches generated by this process in this run, batches read back from the logs)."""
        return self.generated, self.reused

    def run(self, key: str, ids: list[str], generate) -> list:
        """The logged results of this batch, or `generate()`'s, appended durably before they are returned."""
        if key in self.done:
            self.reused += 1
            return self.done[key]
        results = generate()
        line = entry_line(key, ids, results)
        self._append(line)
        self.generated += 1
        self.done[key] = json.loads(line)["entry"]["results"]  # what a rerun reads back, byte for byte
        return self.done[key]

    def _append(self, line: bytes) -> None:
        with open(self.path, "ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # a concurrent writer of the same file waits: whole lines only
            start = fh.seek(0, os.SEEK_END)
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                fh.truncate(start)  # the log stays valid up to its last whole entry
                reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
                raise VovnetError(
                    f"{self.what}: cannot append to the generation log {self.path}: {reason}; "
                    "it is valid up to its last whole entry, and a rerun resumes from there"
                ) from None


def log_root(configured: str, set_name: str) -> Path:
    """A relative evaluation.generation_log is the workspace's, also for a queued experiment's copy."""
    folder = Path(configured).expanduser()
    if not folder.is_absolute():
        folder = workspace_of(Path.cwd()) / folder
    return folder / set_name
