"""What dvc.lock records for a stage: the params it ran with (read, never written; DVC owns the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

MISSING = object()


def locked_param(stage: str, key: str, params_file: str = "params.yaml", lock: str | Path = "dvc.lock") -> Any:
    """The value of params key `key` that `stage` last ran with; MISSING when the lock has none."""
    try:
        data = YAML(typ="safe", pure=True).load(Path(lock).read_text(encoding="utf-8")) or {}
        return data["stages"][stage]["params"][params_file][key]
    except (OSError, YAMLError, KeyError, TypeError):
        return MISSING


def params_match_lock(stage: str, key: str, value: Any, params_file: str = "params.yaml") -> bool:
    """Whether `stage` last ran with `key` = `value` (the raw entry of params.yaml, as DVC compares it)."""
    locked = locked_param(stage, key, params_file)
    return locked is not MISSING and locked == value
