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


def presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in Path(preset_dir).glob("*.yaml"))


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line the file did not wrap
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _load_preset(name: str, preset_dir: Path) -> dict:
    if name not in presets(preset_dir):
        raise VovnetError(f"unknown preset {name!r} (known: {', '.join(presets(preset_dir))})")
    return _yaml().load((Path(preset_dir) / f"{name}.yaml").read_text(encoding="utf-8")) or {}


def _overlay(name: str, preset_dir: Path = PRESET_DIR, seen: tuple = ()) -> dict:
    """The values preset `name` sets, its `base:` preset's first."""
    if name in seen:
        raise VovnetError(f"presets: base cycle {' -> '.join(seen + (name,))}")
    data = _load_preset(name, preset_dir)
    values = {k: v for k, v in data.items() if k not in META}
    if not data.get("base"):
        return values
    merged = _overlay(data["base"], preset_dir, seen + (name,))
    _deep_set(merged, values)
    return merged


def description(name: str, preset_dir: Path = PRESET_DIR) -> str | None:
    return _load_preset(name, preset_dir).get("description")


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


def apply_preset(name: str, params_text: str, preset_dir: Path = PRESET_DIR):
    """The round-trip params document with preset `name` applied."""
    doc = _yaml().load(params_text)
    if doc is None:
        raise VovnetError("params.yaml is empty")
    for key, value in _overlay(name, preset_dir).items():
        if key in REPLACED and isinstance(doc.get(key), dict) and isinstance(value, dict):
            blank = _blank_tail(doc[key])
            for gone in [k for k in doc[key] if k not in value]:
                del doc[key][gone]
            _deep_set(doc[key], value)
            _keep_blank_tail(doc[key], blank)
            _one_blank_gap(doc, key)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            _deep_set(doc[key], value)
        else:
            _deep_set(doc, {key: value})
    return doc


def _tail(mapping) -> tuple | None:
    """(mapping, key) of the last scalar line of a nested mapping."""
    while mapping:
        key = list(mapping)[-1]
        if not (isinstance(mapping[key], dict) and mapping[key]):
            return mapping, key
        mapping = mapping[key]
    return None


def _blank_tail(section):
    """The blank lines after a section (ruamel keeps them as the last line's comment)."""
    tail = _tail(section)
    items = getattr(tail[0], "ca", None).items.get(tail[1]) if tail and hasattr(tail[0], "ca") else None
    token = items[2] if items and len(items) > 2 else None
    return token if token is not None and not token.value.strip() else None


def _one_blank_gap(doc, key) -> None:
    """After a flow list ruamel files the blank line as the next key's leading comment; when the section's
    new last line brings its own blank line, that leading one would double it."""
    keys = list(doc)
    nxt = keys[keys.index(key) + 1] if keys.index(key) + 1 < len(keys) else None
    items = doc.ca.items.get(nxt) if nxt is not None and hasattr(doc, "ca") else None
    if _blank_tail(doc[key]) is not None and items and items[1] and all(not t.value.strip() for t in items[1]):
        items[1] = None


def _keep_blank_tail(section, token) -> None:
    """When the section's last entry was removed, its blank lines move to the new last line."""
    tail = _tail(section)
    if token is None or tail is None or not hasattr(tail[0], "ca"):
        return
    items = tail[0].ca.items.setdefault(tail[1], [None, None, None, None])
    if items[2] is None:
        items[2] = token


def preset_text(name: str, params_text: str, preset_dir: Path = PRESET_DIR) -> str:
    buf = io.StringIO()
    _yaml().dump(apply_preset(name, params_text, preset_dir), buf)
    desc = description(name, preset_dir)
    return HEADER.sub(lambda m: m.group(1) + name + (f" ({desc})." if desc else "."), buf.getvalue(), count=1)


def write_preset(name: str, path: str | Path = "params.yaml", preset_dir: Path = PRESET_DIR) -> None:
    path = Path(path)
    text = preset_text(name, path.read_text(encoding="utf-8"), preset_dir)
    tmp = path.with_suffix(".yaml.partial")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_params(tmp)  # validate before replacing
    except VovnetError as exc:
        tmp.unlink()
        raise VovnetError(f"preset {name}: " + str(exc).replace(str(tmp), str(path))) from None
    tmp.replace(path)
