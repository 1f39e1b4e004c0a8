"""Presets: `python -m vovnet preset sample|fast_dev|paper|demo` rewrites params.yaml's preset sections."""
from __future__ import annotations

import copy
import io
from pathlib import Path

from ruamel.yaml import YAML

from vovnet import VovnetError
from vovnet.config import load_params

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
PRESETS = ("sample", "fast_dev", "paper", "demo")
REPLACED = ("datasets",)  # replaced whole: a preset names exactly its datasets
REPLACED_SUB = {"evaluation": ("sets",)}  # and exactly its evaluation sets


def _deep_update(dst, src):
    for k, v in src.items():
        if k in dst and isinstance(dst[k], dict) and isinstance(v, dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def _overlay(name: str) -> dict:
    if name not in PRESETS:
        raise VovnetError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    data = YAML(typ="safe", pure=True).load((PRESET_DIR / f"{name}.yaml").read_text()) or {}
    base = data.pop("base", None)
    if base:
        merged = _overlay(base)
        _deep_update(merged, data)
        return merged
    return data


def apply_preset(name: str, params_text: str):
    """The round-trip params document with the preset applied (comments elsewhere kept)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    doc = yaml.load(params_text)
    overlay = _overlay(name)
    for key, value in overlay.items():
        if key in REPLACED or key not in doc or not isinstance(value, dict):
            doc[key] = value
        else:
            whole = {k: value.pop(k) for k in REPLACED_SUB.get(key, ()) if k in value}
            _deep_update(doc[key], value)
            doc[key].update(whole)
    return doc


def write_preset(name: str, path: str | Path = "params.yaml") -> None:
    path = Path(path)
    doc = apply_preset(name, path.read_text(encoding="utf-8"))
    buf = io.StringIO()
    yaml = YAML()
    yaml.dump(doc, buf)
    text = buf.getvalue()
    tmp = path.with_suffix(".yaml.partial")
    tmp.write_text(text, encoding="utf-8")
    load_params(tmp)  # validate before replacing
    tmp.replace(path)
