"""download@<dataset>: fetch a source (http(s) URL, local path/file URL, hf:<id>, or package:<module>/<folder>,
the data an installed Python package ships, e.g. `package:easy_vqa/data`) into data/raw/<name>/.

Tokens come only from HF_TOKEN / HUGGINGFACE_HUB_TOKEN and are passed in memory, never written.

The stage runs on every `dvc repro` (a local folder outside the repository cannot be a DVC dependency
of a stage whose source may also be a hub id) and decides itself whether anything changed:
`data/raw/<name>/SOURCE.json` records what was asked for and every file's name, size and sha256 (and
those of an `image_root` outside the raw folder). An unchanged source leaves the folder untouched, so
DVC sees the same output and reruns nothing downstream; sizes and mtimes, cached outside the output,
spare re-hashing files that did not change.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from vovnet import VovnetError
from vovnet.data import hf_source, split_files
from vovnet.data.fingerprint import RECORD, StatCache, fingerprint
from vovnet.io_utils import atomic_path, dumps
from vovnet.tasks.adapters import get_adapter

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
    """What a download was asked for: a change here refetches (the params DVC used to compare)."""
    return {k: cfg.get(k) for k in ("source", "revision", "md5", "subset", "splits", "generator")}


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


def fetch(name: str, cfg: dict, raw_dir: str | Path, retries: int = 4, backoff: float = 1.0) -> bool:
    """Bring raw_dir up to date with the source; False (nothing written) when it already is."""
    raw_dir = Path(raw_dir)
    source = cfg["source"]
    kind = source_kind(source)
    previous = read_record(raw_dir)
    stats = StatCache(raw_dir)
    image_root = _tracked_image_root(name, cfg, raw_dir)
    images = {"path": str(image_root), "files": fingerprint(image_root, stats)} if image_root else None
    request = request_of(cfg)
    if kind in ("file", "package"):
        path = local_path(source) if kind == "file" else package_path(source)
        if path is None or not path.exists():
            where = path or f"{source} (its package is not installed: pip install -r requirements.txt)"
            if previous is not None and intact(raw_dir, previous):
                log.warning("datasets.%s.source: %s is not on this machine; keeping %s as pulled", name, where, raw_dir)
                return False
            raise VovnetError(f"datasets.{name}.source: {where} does not exist")
        files = fingerprint(path, stats, skip=(RECORD,))
        wanted = {"request": request, "files": files, "image_root": images}
        if previous == wanted and intact(raw_dir, previous):
            stats.save()
            log.info("download@%s: %s unchanged (%d files); nothing to do", name, path, len(files))
            return False
        with atomic_path(raw_dir) as tmp:
            tmp.mkdir()
            if path.is_dir():
                copy_contained(path, tmp, f"datasets.{name}.source")
            else:
                shutil.copy2(path, tmp / path.name)
                _check_md5(tmp / path.name, _expected_md5(cfg, path.name))
            write_record(tmp, wanted)
        stats.remember(raw_dir, files)
        stats.save()
        return True
    if (
        previous is not None
        and previous["request"] == request
        and previous.get("image_root") == images
        and intact(raw_dir, previous)
    ):
        log.info("download@%s: %s already fetched (%d files); nothing to do", name, source, len(previous["files"]))
        return False
    if kind == "generate" and not isinstance(cfg.get("generator"), dict):
        raise VovnetError(
            f"params.yaml: datasets.{name}.generator: source is `generate`, so give the generator's spec as a mapping"
        )
    with atomic_path(raw_dir) as tmp:
        tmp.mkdir()
        if kind == "generate":
            (tmp / "generator.json").write_text(json.dumps(cfg["generator"], indent=2, sort_keys=True) + "\n")
        elif kind == "hf":
            _fetch_hf(source[3:], cfg, tmp)
        else:
            dest = tmp / (Path(urllib.parse.urlparse(source).path).name or "download")
            download_url(source, dest, retries=retries, backoff=backoff, md5=_expected_md5(cfg, dest.name))
        files = fingerprint(tmp, None, skip=(RECORD,))
        write_record(tmp, {"request": request, "files": files, "image_root": images})
    stats.remember(raw_dir, files)
    stats.save()
    return True


def watched_paths(name: str, cfg: dict, raw_dir: str | Path) -> list[Path]:
    """What a no-op check must stat besides params: a local source and an image_root outside raw_dir."""
    source, root = cfg["source"], _tracked_image_root(name, cfg, Path(raw_dir))
    kind = source_kind(source)
    local = local_path(source) if kind == "file" else package_path(source) if kind == "package" else None
    return ([local] if local else []) + ([root] if root else [])


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
            if os.path.commonpath([root, real]) != root:
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


def hf_patterns(folder: Path, cfg: dict) -> list[str]:
    """The files one run needs, from the snapshot's README `configs:`: its configs' requested splits only."""
    splits = list(cfg["splits"])
    explicit = [str(v) for v in cfg["splits"].values()] if isinstance(cfg["splits"], dict) else []
    configs = hf_source.card_configs(folder)
    adapter = get_adapter(cfg["adapter"])
    wanted = adapter.hf_configs(folder, cfg)
    if configs is None or wanted is None:
        return explicit or layout_patterns(cfg)
    patterns = list(explicit)
    for name in wanted:
        config = hf_source.select_configs(folder, configs, name)[0]
        for split in splits:
            if not (isinstance(cfg["splits"], dict) and cfg["splits"][split]):
                patterns += hf_source.split_patterns(folder, config, split)
    return sorted(set(patterns))


def layout_patterns(cfg: dict) -> list[str]:
    """Without README configs: the files whose name says a requested split (in the subset's folder)."""
    subset = cfg.get("subset")
    names = (
        [subset] if isinstance(subset, str) and subset != "all" else list(subset) if isinstance(subset, list) else []
    )
    spellings = {s for split in cfg["splits"] for a in split_files.aliases(split) for s in (a, a.upper())}
    return sorted(f"{n}/*{s}*" for n in names for s in spellings) if names else sorted(f"*{s}*" for s in spellings)


def _fetch_hf(repo_id: str, cfg: dict, dest: Path) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    def get(patterns: list[str]) -> None:
        snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=cfg.get("revision"),
            local_dir=dest,
            allow_patterns=patterns,
            token=hf_token(),
        )

    patterns = layout_patterns(cfg)
    try:
        get([hf_source.CARD])  # the card says which files hold the wanted configs and splits
        patterns = hf_patterns(dest, cfg)
        get([hf_source.CARD] + patterns)
    except LocalEntryNotFoundError:
        include = " ".join(f"--include '{p}'" for p in [hf_source.CARD] + patterns)
        raise VovnetError(
            f"hf:{repo_id} is not in the local Hugging Face cache and the hub is unreachable or HF_HUB_OFFLINE=1; "
            f"on a connected machine run `hf download --repo-type dataset {repo_id} {include}` "
            "(or `dvc repro download@...` then `dvc push`, and `dvc pull` here)"
        ) from None
    except VovnetError:
        raise
    except Exception as exc:  # hub errors (auth, missing repo, network) become one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VovnetError(f"hf:{repo_id}: {type(exc).__name__}: {first}") from None
    # huggingface_hub keeps download metadata (with timestamps) under .cache; it is not data.
    shutil.rmtree(dest / ".cache", ignore_errors=True)
