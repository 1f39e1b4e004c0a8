"""Model snapshots for connected machines: `python -m vovnet download-model REPO --revision R --out DIR`.

Only the root's safetensors weights and config/tokenizer/processor files are fetched (the client's patterns
are fnmatch, where `*` matches `/`, so they are exact root-level names, never `onnx/*.json`). The revision is
resolved once and the commit recorded in DIR/SOURCE.json; a rerun at the same commit fetches nothing. The
result is then tracked with `dvc add DIR` and reaches offline servers with `dvc push` / `dvc pull`.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

from vovnet import VovnetError
from vovnet.data.download import hf_token
from vovnet.io_utils import atomic_path, dumps
from vovnet.model.loading import check_model_dir

PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model", "*.tiktoken"]
RECORD = "SOURCE.json"


def root_files(paths: list[str]) -> list[str]:
    """The repository's root-level files a model folder needs."""
    return sorted(p for p in paths if "/" not in p and any(fnmatch.fnmatchcase(p, pat) for pat in PATTERNS))


def recorded_commit(out: Path) -> str | None:
    try:
        return json.loads((out / RECORD).read_text())["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def download_model(repo_id: str, out: str | Path, revision: str | None = None) -> str:
    """Fetch the model at the commit `revision` names now; returns the commit."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import OfflineModeIsEnabled

    from vovnet.data.hub_fetch import hub_error, quiet_logs

    quiet_logs()
    out = Path(out)
    try:
        info = HfApi().model_info(repo_id, revision=revision, token=hf_token())
    except OfflineModeIsEnabled:
        raise VovnetError(
            f"{repo_id}: the hub is unreachable or HF_HUB_OFFLINE=1; run this on a connected machine, then "
            "`dvc add` the folder and `dvc push`"
        ) from None
    except Exception as exc:  # the client's HTTP and network errors: one line with their reason
        raise hub_error(exc, repo_id, revision, "model") from None
    if recorded_commit(out) == info.sha and out.is_dir():
        check_model_dir(out)
        return info.sha
    files = root_files([s.rfilename for s in info.siblings or []])
    with atomic_path(out) as tmp:
        try:
            snapshot_download(repo_id, revision=info.sha, local_dir=tmp, allow_patterns=files, token=hf_token())
        except Exception as exc:  # the client's HTTP and network errors: one line with their reason
            raise hub_error(exc, repo_id, info.sha, "model") from None
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # download metadata with timestamps
        (tmp / RECORD).write_text(dumps({"repo": repo_id, "revision": revision, "commit": info.sha}) + "\n")
        check_model_dir(tmp)
    return info.sha
