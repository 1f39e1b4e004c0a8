"""download@<dataset>: fetch a source (http(s) URL, local path/file URL, hf:<id>, or package:<module>/<folder>,
the data an installed Python package ships, e.g. `package:easy_vqa/data`) into data/raw/<name>/.

Tokens come only from HF_TOKEN / HUGGINGFACE_HUB_TOKEN and are passed in memory, never written.

DVC runs the stage when its params entry or its code changes, when a local source under data/samples
(a dep) changes, or when asked (`python -m vovnet update`, `dvc repro -f download@<name>`): like an import,
an external source (the hub, a URL, a folder outside the repository) is checked on request, not on every
repro. `data/raw/<name>/SOURCE.json` records what was asked for, the hub commit it resolved to, and every
file's name, size and sha256 (and those of an `image_root` outside the raw folder). An unchanged source
leaves the folder untouched (the output is `persist`), so nothing downstream reruns; sizes and mtimes,
cached outside the output, spare re-hashing files that did not change.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from vovnet import VovnetError
from vovnet.data.fingerprint import RECORD, StatCache, fingerprint
from vovnet.data.interfaces import Adapter
from vovnet.io_utils import atomic_path, dumps

log = logging.getLogger("vovnet.download")
SCHEMES = ("http", "https", "file", "hf", "package")
CHUNK = 1 << 20
GENERATE = "generate"  # no download: the adapter renders the set from datasets.<name>.generator


def hf_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACE_HUB_TOKEN") or None


def source_kind(source: str) -> str:
    if source == GENERATE:
        return "generate"
    if source.startswith("hf:"):
        return "hf"
    if source.startswith("package:"):
        return "package"
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in ("http", "https"):
        return "url"
    if scheme == "file":
        return "file"
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise VovnetError(f"unsupported source {source!r}: only {', '.join(SCHEMES)} sources and local paths")
    return "file"


def request_of(cfg: dict) -> dict:
    """What a download was asked for besides the revision (the record's `commit` says what that resolved to,
    so pinning `revision:` to the fetched commit changes nothing): a change here refetches."""
    return {k: cfg.get(k) for k in ("source", "md5", "subset", "splits", "generator")}


def local_path(source: str) -> Path:
    return Path(urllib.parse.urlparse(source).path if source.startswith("file:") else source)


def package_path(source: str) -> Path | None:
    """`package:<module>/<folder>`: a folder inside an installed package (pip's copy is the download);
    None when the package is not installed (a server that `dvc pull`s the raw copy needs no install)."""
    module, _, folder = source[len("package:") :].partition("/")
    rel = Path(folder)
    if not module.isidentifier() or rel.is_absolute() or ".." in rel.parts:
        raise VovnetError(f"source {source!r}: expected package:<module>/<folder inside it>")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / rel


def fetch(
    name: str,
    cfg: dict,
    raw_dir: str | Path,
    adapter: Adapter | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    *,
    locked: bool = False,
) -> bool:
    """Bring raw_dir up to date with the source; False (nothing written) when it already is. `adapter` (the
    dataset's task, which the stage loads) says which Hugging Face configs a hub source needs; without one,
    the files are chosen by their names (layout_patterns). `locked`: dvc.lock holds these very params, so a
    source this machine cannot reach keeps the data as pulled (a changed entry never does: a typo fails)."""
    raw_dir = Path(raw_dir)
    fetch_ = Fetch(name, cfg, raw_dir, locked)
    kind = source_kind(cfg["source"])
    if kind in ("file", "package"):
        return fetch_.local()
    if kind == "hf":
        return fetch_.hub(adapter)
    if kind == "generate" and not isinstance(cfg.get("generator"), dict):
        raise VovnetError(
            f"params.yaml: datasets.{name}.generator: source is `generate`, so give the generator's spec as a mapping"
        )
    if fetch_.unchanged(None):
        log.info("download@%s: %s already fetched; nothing to do", name, cfg["source"])
        return False
    with fetch_.writing(None) as tmp:
        if kind == "generate":
            (tmp / "generator.json").write_text(json.dumps(cfg["generator"], indent=2, sort_keys=True) + "\n")
        else:
            dest = tmp / (Path(urllib.parse.urlparse(cfg["source"]).path).name or "download")
            download_url(cfg["source"], dest, retries=retries, backoff=backoff, md5=_expected_md5(cfg, dest.name))
    return True


class Fetch:
    """One download@ run: the previous record (SOURCE.json), what is asked for now, and the writing."""

    def __init__(self, name: str, cfg: dict, raw_dir: Path, locked: bool):
        self.name, self.cfg, self.raw_dir, self.locked = name, cfg, raw_dir, locked
        self.previous = read_record(raw_dir)
        self.stats = StatCache(raw_dir)
        image_root = _tracked_image_root(name, cfg, raw_dir)
        self.images = {"path": str(image_root), "files": fingerprint(image_root, self.stats)} if image_root else None
        self.request = request_of(cfg)

    def record(self, files: list[dict], commit: str | None) -> dict:
        return {"request": self.request, "commit": commit, "files": files, "image_root": self.images}

    def unchanged(self, commit: str | None, files: list[dict] | None = None) -> bool:
        """The raw folder already holds what is asked for (at `commit`), every file there with its size."""
        prev = self.previous
        if prev is None or not intact(self.raw_dir, prev):
            return False
        same = (
            prev["request"] == self.request and prev.get("commit") == commit and prev.get("image_root") == self.images
        )
        return same and (files is None or prev["files"] == files)

    def keep_pulled(self, why: str) -> bool:
        """The source is out of reach here: keep the pulled data when dvc.lock says these params made it."""
        if self.locked and self.previous is not None and intact(self.raw_dir, self.previous):
            log.warning(
                "datasets.%s.source: %s; params match dvc.lock: keeping %s as pulled", self.name, why, self.raw_dir
            )
            return True
        return False

    @contextlib.contextmanager
    def writing(self, commit: str | None):
        """A fresh raw folder, swapped in whole with its SOURCE.json once the body succeeds."""
        with atomic_path(self.raw_dir) as tmp:
            tmp.mkdir()
            yield tmp
            files = fingerprint(tmp, None, skip=(RECORD,))
            write_record(tmp, self.record(files, commit))
        self.stats.remember(self.raw_dir, files)
        self.stats.save()

    def local(self) -> bool:
        source, name = self.cfg["source"], self.name
        path = local_path(source) if source_kind(source) == "file" else package_path(source)
        if path is None or not path.exists():
            where = path or f"{source} (its package is not installed: pip install -r requirements.txt)"
            if self.keep_pulled(f"{where} is not on this machine"):
                return False
            changed = f" ({self.raw_dir} is kept only while the entry matches dvc.lock's)" if self.previous else ""
            raise VovnetError(f"datasets.{name}.source: {where} does not exist{changed}")
        files = fingerprint(path, self.stats, skip=(RECORD,))
        commit = hub_snapshot_commit(path)
        if self.unchanged(commit, files):
            self.stats.save()
            log.info("download@%s: %s unchanged (%d files); nothing to do", name, path, len(files))
            return False
        with self.writing(commit) as tmp:
            if path.is_dir():
                copy_contained(path, tmp, f"datasets.{name}.source")
            else:
                shutil.copy2(path, tmp / path.name)
                _check_md5(tmp / path.name, _expected_md5(self.cfg, path.name))
        return True

    def hub(self, adapter: Adapter | None) -> bool:
        """Resolve the revision once; fetch the card and the files at that commit (online), else copy them
        out of the Hugging Face cache (offline)."""
        from vovnet.data import hub_fetch

        hub_fetch.quiet_logs()
        repo_id, revision = self.cfg["source"][3:], self.cfg.get("revision")
        known = self.previous.get("commit") if self.previous else None
        if hub_fetch.is_commit(revision) and revision == known and self.unchanged(known):
            log.info("download@%s: hf:%s at %s already fetched; nothing to do", self.name, repo_id, known)
            return False
        commit = hub_fetch.resolve_commit(repo_id, revision, hf_token())
        if commit is None:
            return self.hub_offline(adapter, repo_id, revision)
        if self.unchanged(commit):
            log.info("download@%s: hf:%s@%s is still %s; nothing to do", self.name, repo_id, revision or "main", commit)
            return False
        with self.writing(commit) as tmp:
            hub_fetch.fetch_online(
                repo_id, commit, lambda folder: hub_fetch.hf_patterns(folder, self.cfg, adapter), tmp, hf_token()
            )
        return True

    def hub_offline(self, adapter: Adapter | None, repo_id: str, revision: str | None) -> bool:
        from vovnet.data import hub_fetch

        snapshot = hub_fetch.cached_snapshot(repo_id, revision)
        card = snapshot is not None and (snapshot / hub_fetch.CARD).is_file()
        patterns = hub_fetch.hf_patterns(snapshot, self.cfg, adapter) if card else hub_fetch.layout_patterns(self.cfg)
        wanted, missing = hub_fetch.snapshot_files(snapshot, patterns) if snapshot is not None else ([], patterns)
        if snapshot is not None and not missing:
            if self.unchanged(snapshot.name):
                return False
            with self.writing(snapshot.name) as tmp:
                hub_fetch.copy_snapshot(snapshot, wanted, tmp)
            return True
        if self.keep_pulled(f"hf:{repo_id} cannot be reached and is not in the local Hugging Face cache"):
            return False
        lacks = f"lacks {', '.join(missing)}" if snapshot is not None else "is not in the local Hugging Face cache"
        raise VovnetError(
            f"datasets.{self.name}: hf:{repo_id} {lacks} and the hub is unreachable or HF_HUB_OFFLINE=1; "
            + hub_fetch.offline_advice(repo_id, revision, patterns, card)
        )


def hub_snapshot_commit(path: Path) -> str | None:
    """A local source that is a hub cache's snapshot folder (…/snapshots/<commit>) names its commit."""
    if path.is_dir() and path.parent.name == "snapshots" and (path.parent.parent / "blobs").is_dir():
        return path.name if re.fullmatch(r"[0-9a-f]{40}", path.name) else None
    return None


def _tracked_image_root(name: str, cfg: dict, raw_dir: Path) -> Path | None:
    """An image_root outside the raw folder is a source too: its files are fingerprinted."""
    root = cfg.get("image_root")
    if not root:
        return None
    root = Path(root)
    if root.resolve().is_relative_to(raw_dir.resolve()):
        return None
    if not root.is_dir():
        raise VovnetError(f"datasets.{name}.image_root: {root} is not a folder")
    return root


def read_record(raw_dir: Path) -> dict | None:
    try:
        record = json.loads((raw_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "request" in record and "files" in record else None


def write_record(folder: Path, record: dict) -> None:
    (folder / RECORD).write_text(dumps(record) + "\n")


def intact(raw_dir: Path, record: dict) -> bool:
    """Every recorded file is there with its size (a stat per file, no reading)."""
    for f in record["files"]:
        p = raw_dir / f["name"]
        if not p.is_file() or p.stat().st_size != f["bytes"]:
            return False
    return True


SKIP_DIRS = (".cache", "__pycache__")


def copy_contained(
    src: Path, dest: Path, where: str, _root: str | None = None, _active: frozenset = frozenset()
) -> None:
    """Copy a local source folder; a symlink is followed only when its target lies inside the folder (the
    copy holds the target's bytes). A link that leaves it, dangles or loops is an error naming it, so
    `download` never brings in a file from elsewhere on disk (which the adapters' own rules would refuse)."""
    root = _root or os.path.realpath(src)
    active = _active | {os.path.realpath(src)}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel_dir = os.path.relpath(dirpath, src)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        (dest / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(dirnames + filenames):
            entry = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not os.path.islink(entry):
                if name in dirnames:
                    continue  # os.walk descends into it
                if not os.path.isfile(entry):
                    raise VovnetError(f"{where}: {rel} is not a regular file")
                shutil.copy2(entry, dest / rel)
                continue
            try:
                real = os.path.realpath(entry, strict=True)
            except OSError as exc:
                why = "loops" if exc.errno == errno.ELOOP else "points at nothing"
                raise VovnetError(f"{where}: symlink {rel} {why}; replace it with the file") from None
            if os.path.commonpath([root, real]) != root and not _in_cache_blobs(root, real):
                raise VovnetError(
                    f"{where}: symlink {rel} points outside the source folder ({real}); "
                    "copy the file into the folder instead"
                )
            if os.path.isdir(real):
                if real in active or os.path.commonpath([real, os.path.realpath(dirpath)]) == real:
                    raise VovnetError(f"{where}: symlink {rel} points at a folder that contains it (a loop)")
                copy_contained(Path(real), dest / rel, where, root, active)
            elif os.path.isfile(real):
                shutil.copy2(real, dest / rel)
            else:
                raise VovnetError(f"{where}: symlink {rel} points at something that is not a regular file")


def _in_cache_blobs(root: str, real: str) -> bool:
    """A hub cache's snapshot folder (<repo>/snapshots/<commit>) links its files into <repo>/blobs/."""
    blobs = os.path.join(os.path.dirname(os.path.dirname(root)), "blobs")
    return hub_snapshot_commit(Path(root)) is not None and os.path.commonpath([blobs, real]) == blobs


def _expected_md5(cfg: dict, filename: str) -> str | None:
    md5 = cfg.get("md5")
    if isinstance(md5, dict):
        return md5.get(filename)
    return md5


def _check_md5(path: Path, expected: str | None) -> None:
    if not expected:
        return
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise VovnetError(f"{path.name}: md5 {digest.hexdigest()} does not match the published {expected}")


def download_url(
    url: str, dest: Path, *, retries: int = 4, backoff: float = 1.0, md5: str | None = None, timeout: float = 60
) -> None:
    """Stream to dest + '.part', resuming with Range after a dropped connection; verify size and md5."""
    part = dest.with_name(dest.name + ".part")
    expected_size = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                if have and resp.status != 206:  # server ignored Range: restart from scratch
                    have = 0
                length = resp.headers.get("Content-Length")
                if length is not None:
                    expected_size = have + int(length)
                with open(part, "ab" if have else "wb") as fh:
                    while chunk := resp.read(CHUNK):
                        fh.write(chunk)
            size = part.stat().st_size
            if expected_size is not None and size < expected_size:
                raise ConnectionError(f"connection dropped at {size} of {expected_size} bytes")
            break
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise VovnetError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            err = exc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            err = exc
        if attempt == retries:
            raise VovnetError(f"{url}: download failed after {retries + 1} attempts ({err})")
        wait = backoff * 2**attempt
        log.warning("download of %s interrupted (%s); retry %d/%d in %.1fs", url, err, attempt + 1, retries, wait)
        time.sleep(wait)
    _check_md5(part, md5)
    os.replace(part, dest)
