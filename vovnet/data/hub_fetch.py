"""The Hugging Face hub side of `download`: one commit per fetch, the cache as the offline route, one-line errors.

Online, the revision is resolved once (`dataset_info(...).sha`) and the card and the files are fetched at
that commit, so they cannot come from two commits. Offline (HF_HUB_OFFLINE=1, or the hub unreachable) the
client reads its cache only when `local_dir` is None, so the offline route reads the cache's snapshot
(`datasets--<org>--<name>/snapshots/<commit>/`, symlinks into `blobs/`) and copies the wanted files out.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

from vovnet import VovnetError
from vovnet.data import hf_source, split_files
from vovnet.data.interfaces import Adapter

CARD = hf_source.CARD
COMMIT = re.compile(r"[0-9a-f]{40}")


def quiet_logs() -> None:
    """No request URLs at INFO (httpx logs each one, pre-signed CDN URLs included), and the client's
    warnings once: its own handler is dropped, so they reach the root handler only."""
    for name in ("httpx2", "httpx", "httpcore"):  # huggingface_hub 2.x speaks httpx2
        logging.getLogger(name).setLevel(logging.WARNING)
    import huggingface_hub  # noqa: F401  (it installs its handler on import)

    logging.getLogger("huggingface_hub").handlers.clear()


def is_commit(revision: str | None) -> bool:
    return bool(revision and COMMIT.fullmatch(revision))


def hub_error(exc: Exception, repo_id: str, revision: str | None, repo_type: str = "dataset") -> VovnetError:
    """The client's error in one line: the revision, the HTTP status, the server's reason, the gated hint;
    never the request URL (it may be a signed one)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    where = f"hf:{repo_id}@{revision or 'main'}" if repo_type == "dataset" else f"{repo_id}@{revision or 'main'}"
    if not isinstance(exc, HfHubHTTPError):
        return VovnetError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")
    status = getattr(exc.response, "status_code", None) if exc.response is not None else None
    reason = " ".join((exc.server_message or "").split())
    if isinstance(exc, GatedRepoError):
        page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
        hint = f"gated {repo_type}: accept its terms at {page} and set HF_TOKEN"
    elif isinstance(exc, RevisionNotFoundError):
        hint = f"no revision {revision!r}"
    elif isinstance(exc, RepositoryNotFoundError):
        hint = f"no such {repo_type}, or a private one (check the id; set HF_TOKEN)"
    else:
        hint = type(exc).__name__
    return VovnetError(f"{where}: HTTP {status}: {hint}{f' ({reason})' if reason else ''}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def resolve_commit(repo_id: str, revision: str | None, token: str | None) -> str | None:
    """The commit `revision` names now; None when the hub cannot be asked (offline mode, no connection)."""
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        sha = HfApi().dataset_info(repo_id, revision=revision, token=token).sha
    except (OfflineModeIsEnabled, httpx2.ConnectError, httpx2.TimeoutException):
        return None
    except Exception as exc:  # the client's HTTP errors: one line with their reason
        raise hub_error(exc, repo_id, revision) from None
    if not is_commit(sha):
        raise VovnetError(f"hf:{repo_id}@{revision or 'main'}: the hub returned no commit")
    return sha


def fetch_online(
    repo_id: str, commit: str, patterns_of: Callable[[Path], list[str]], dest: Path, token: str | None
) -> list[str]:
    """The card, then the files `patterns_of(dest)` names, both at `commit`; returns the patterns."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        try:
            hf_hub_download(repo_id, CARD, repo_type="dataset", revision=commit, local_dir=dest, token=token)
        except EntryNotFoundError:
            pass  # a dataset without a card: the files' names say their splits
        patterns = patterns_of(dest)
        snapshot_download(
            repo_id, repo_type="dataset", revision=commit, local_dir=dest, allow_patterns=[CARD, *patterns], token=token
        )
    except VovnetError:
        raise
    except Exception as exc:  # the client's HTTP and network errors: one line with their reason
        raise hub_error(exc, repo_id, commit) from None
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # the client's download metadata (timestamps): not data
    return patterns


def cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cache's snapshot folder for `revision` (refs/<branch> or a commit); None when it holds none."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        return None
    return Path(folder)


def snapshot_files(folder: Path, patterns: list[str]) -> tuple[list[str], list[str]]:
    """The card and the files of a cache snapshot that `patterns` match (the client's fnmatch: `*` matches
    `/`), and the patterns no file matches (the cache lacks them)."""
    rels = sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder, followlinks=False) for f in files
    )
    wanted = [r for r in rels if r == CARD or any(fnmatch.fnmatchcase(r, p) for p in patterns)]
    return wanted, [p for p in patterns if not any(fnmatch.fnmatchcase(r, p) for r in wanted)]


def copy_snapshot(folder: Path, rels: list[str], dest: Path) -> None:
    """Copy files out of a cache snapshot as regular files; a link may point into the cache's blobs/ only."""
    blobs = (folder.parent.parent / "blobs").resolve()
    for rel in rels:
        real = (folder / rel).resolve()
        if not (real.is_relative_to(blobs) or real.is_relative_to(folder.resolve())) or not real.is_file():
            raise VovnetError(f"{folder}: {rel} points outside the cache's blobs/ ({real})")
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, dest / rel)


def offline_advice(repo_id: str, revision: str | None, patterns: list[str], card_cached: bool) -> str:
    """What to run on a connected machine so that this fetch passes offline (through the cache)."""
    rev = f" --revision {revision}" if revision else ""
    if not card_cached:
        return (
            f"on a connected machine run `hf download --repo-type dataset {repo_id}{rev} {CARD}` first "
            "(the card says which files the configs and splits need), then rerun for the exact command; "
            "or `dvc repro download@...` there, `dvc push`, and `dvc pull` here"
        )
    include = " ".join(f"--include '{p}'" for p in [CARD, *patterns])
    return (
        f"on a connected machine run `hf download --repo-type dataset {repo_id}{rev} {include}` "
        "(into the Hugging Face cache, which this machine must share: HF_HOME), or add `--local-dir DIR` and "
        "set `source: DIR`; or `dvc repro download@...` there, `dvc push`, and `dvc pull` here"
    )


def hf_patterns(folder: Path, cfg: dict, adapter: Adapter | None) -> list[str]:
    """The files one run needs, from the snapshot's README `configs:`: the requested splits of the configs
    the adapter reads (none given, or not an HF layout: by the files' names)."""
    splits = list(cfg["splits"])
    explicit = [str(v) for v in cfg["splits"].values()] if isinstance(cfg["splits"], dict) else []
    configs = hf_source.card_configs(folder)
    wanted = adapter.hf_configs(folder, cfg) if adapter is not None else None
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
