"""Presets: `python -m vovnet preset NAME` sets the values presets/NAME.yaml lists, in place in params.yaml.

params.yaml is edited round-trip (ruamel): comments, key order, flow lists, quoting and `null` stay as they
are, a value the preset does not set (or sets to what the file already holds) is not touched, and line 1's
`Preset:` names the new preset. A preset names exactly its datasets: others are removed, new ones appended.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from ruamel.yaml import YAML

from vovnet import VovnetError
from vovnet.config import load_params

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
REPLACED = ("datasets",)  # a preset lists exactly its datasets
HEADER = re.compile(r"^(# VoVNet parameters\. Preset: )[^\n]*", re.MULTILINE)
META = ("base", "description")  # keys of a preset file that are not params


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line the file did not wrap
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _load_preset(name: str) -> dict:
    if name not in presets():
        raise VovnetError(f"unknown preset {name!r} (known: {', '.join(presets())})")
    return _yaml().load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}


def _overlay(name: str, seen: tuple = ()) -> dict:
    """The values preset `name` sets, its `base:` preset's first."""
    if name in seen:
        raise VovnetError(f"presets: base cycle {' -> '.join(seen + (name,))}")
    data = _load_preset(name)
    values = {k: v for k, v in data.items() if k not in META}
    if not data.get("base"):
        return values
    merged = _overlay(data["base"], seen + (name,))
    _deep_set(merged, values)
    return merged


def description(name: str) -> str | None:
    return _load_preset(name).get("description")


def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _deep_set(doc: dict, values: dict) -> None:
    """Set `values` into `doc` in place; only keys whose value differs are written."""
    for key, value in values.items():
        if key not in doc:
            doc[key] = value
            continue
        cur = doc[key]
        if isinstance(value, dict) and isinstance(cur, dict):
            _deep_set(cur, value)
        elif isinstance(value, list) and isinstance(cur, list):
            if len(cur) != len(value) or not all(_same(a, b) for a, b in zip(cur, value)):
                cur[:] = value  # the sequence object (and its flow style) stays
        elif not _same(cur, value):
            doc[key] = value  # the key keeps its comment


def apply_preset(name: str, params_text: str):
    """The round-trip params document with preset `name` applied."""
    doc = _yaml().load(params_text)
    if doc is None:
        raise VovnetError("params.yaml is empty")
    for key, value in _overlay(name).items():
        if key in REPLACED and isinstance(doc.get(key), dict) and isinstance(value, dict):
            for gone in [k for k in doc[key] if k not in value]:
                del doc[key][gone]
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            _deep_set(doc[key], value)
        else:
            _deep_set(doc, {key: value})
    return doc


def preset_text(name: str, params_text: str) -> str:
    buf = io.StringIO()
    _yaml().dump(apply_preset(name, params_text), buf)
    desc = description(name)
    return HEADER.sub(lambda m: m.group(1) + name + (f" ({desc})." if desc else "."), buf.getvalue(), count=1)


def write_preset(name: str, path: str | Path = "params.yaml") -> None:
    path = Path(path)
    text = preset_text(name, path.read_text(encoding="utf-8"))
    tmp = path.with_suffix(".yaml.partial")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_params(tmp)  # validate before replacing
    except VovnetError as exc:
        tmp.unlink()
        raise VovnetError(f"preset {name}: " + str(exc).replace(str(tmp), str(path))) from None
    tmp.replace(path)
