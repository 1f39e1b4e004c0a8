"""Model snapshots for connected machines: `python -m vovnet download-model REPO --revision R --out DIR`.

Only safetensors weights and config/tokenizer/processor files are fetched; the result is then tracked
with `dvc add DIR` and reaches offline servers with `dvc push` / `dvc pull`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vovnet import VovnetError
from vovnet.data.download import hf_token
from vovnet.io_utils import atomic_path
from vovnet.model.loading import check_model_dir

PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model", "*.tiktoken"]


def download_model(repo_id: str, out: str | Path, revision: str | None = None) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    with atomic_path(out) as tmp:
        try:
            snapshot_download(repo_id, revision=revision, local_dir=tmp, allow_patterns=PATTERNS, token=hf_token())
        except LocalEntryNotFoundError:
            raise VovnetError(
                f"{repo_id}: not in the local Hugging Face cache and the hub is unreachable; run this on "
                "a connected machine, then `dvc add` the folder and `dvc push`"
            ) from None
        except Exception as exc:  # hub errors (auth, missing repo, network) become one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VovnetError(f"{repo_id}: {type(exc).__name__}: {first}") from None
        shutil.rmtree(Path(tmp) / ".cache", ignore_errors=True)  # download metadata with timestamps
        check_model_dir(tmp)
