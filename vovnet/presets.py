"""Presets: `python -m vovnet preset NAME` sets the values presets/NAME.yaml lists, in place in params.yaml.

params.yaml is edited round-trip (ruamel): comments, key order, flow lists, quoting and `null` stay as they
are, a value the preset does not set (or sets to what the file already holds) is not touched, and line 1's
`Preset:` names the new preset. A preset names exactly its datasets and evaluation sets, each with exactly
the keys it lists (the rest come from the task's defaults.yaml): others are removed, new ones appended.
A preset with a `base:` starts from that preset's values; `<entry>: null` drops one of the base's entries.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from vovnet import VovnetError
from vovnet.config import load_params, read_yaml

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
REPLACED = (("datasets",), ("evaluation", "sets"))  # a preset lists exactly its datasets and evaluation sets
HEADER = re.compile(r"^(# VoVNet parameters\. Preset: )[^\n]*", re.MULTILINE)
META = ("base", "description")  # keys of a preset file that are not params


def presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in Path(preset_dir).glob("*.yaml"))


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line the file did not wrap
    yaml.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
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
    base = _overlay(data["base"], preset_dir, seen + (name,)) if data.get("base") else {}
    for path in REPLACED:  # `<entry>: null` drops one of the base preset's datasets or evaluation sets
        for entry, value in (_get(values, path) or {}).items():
            if value is None and entry not in (_get(base, path) or {}):
                where = ".".join(path + (entry,))
                has = f"preset {data['base']!r} has no {where}" if base else "it has no base preset"
                raise VovnetError(f"presets/{name}.yaml: {where}: null drops a base preset's entry, but {has}")
    if not base:
        return values
    _deep_set(base, values, replace=False)
    for path in REPLACED:
        entries = _get(base, path)
        for gone in [k for k, v in (entries or {}).items() if v is None]:
            del entries[gone]
    return base


def _get(doc: dict, path: tuple):
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def description(name: str, preset_dir: Path = PRESET_DIR) -> str | None:
    return _load_preset(name, preset_dir).get("description")


def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _deep_set(doc: dict, values: dict, path: tuple = (), replace: bool = True, exact: bool = False) -> None:
    """Set `values` into `doc` in place; only keys whose value differs are written. With `replace`, the
    REPLACED mappings and every entry under them end up with exactly the keys of `values` (an entry lists
    what differs from its task's defaults, so a key the preset leaves out goes back to the default); a base
    preset's overlay merges instead."""
    exact = exact or (replace and path in REPLACED)
    if exact:
        for gone in [k for k in doc if k not in values]:
            del doc[gone]
    for key, value in values.items():
        if key not in doc:
            doc[key] = value
            if isinstance(values, CommentedMap) and isinstance(doc, CommentedMap) and key in values.ca.items:
                doc.ca.items[key] = values.ca.items[key]  # a key the preset adds keeps its comment there
            continue
        cur = doc[key]
        if isinstance(value, dict) and isinstance(cur, dict):
            _deep_set(cur, value, path + (key,), replace, exact)
        elif isinstance(value, list) and isinstance(cur, list):
            if len(cur) != len(value) or not all(_same(a, b) for a, b in zip(cur, value)):
                was_empty = not cur
                cur[:] = value  # the sequence object (and its flow style) stays
                if was_empty and hasattr(value, "fa") and value.fa.flow_style():
                    cur.fa.set_flow_style()  # `[]` records no style: take the preset's
        elif not _same(cur, value):
            doc[key] = value  # the key keeps its comment, but a preset's own comment wins over its base's
            if not replace and isinstance(values, CommentedMap) and key in values.ca.items:
                doc.ca.items[key] = values.ca.items[key]


def apply_preset(name: str, params_text: str, preset_dir: Path = PRESET_DIR):
    """The round-trip params document with preset `name` applied."""
    doc = _yaml().load(params_text)
    if not isinstance(doc, dict):
        raise VovnetError("params.yaml: expected a mapping of sections")
    _deep_set(doc, _overlay(name, preset_dir))
    return doc


TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*):")


def _gaps(text: str) -> dict[str, bool]:
    """Whether a blank line precedes each top-level key."""
    lines = text.split("\n")
    return {
        m.group(1): i > 0 and not lines[i - 1].strip() for i, line in enumerate(lines) if (m := TOP_KEY.match(line))
    }


def _restore_gaps(text: str, gaps: dict[str, bool]) -> str:
    """ruamel files a section's trailing blank line under its last entry (or the next key, after a flow
    list), so removing or replacing that entry moves it; the sections keep the file's spacing instead."""
    out: list[str] = []
    for line in text.split("\n"):
        m = TOP_KEY.match(line)
        if line.startswith(" ") and out and not out[-1].strip():
            while out and not out[-1].strip():
                out.pop()  # no blank line inside a section: one left by a removed or re-added entry
        if m and m.group(1) in gaps:
            while out and not out[-1].strip():
                out.pop()
            if gaps[m.group(1)]:
                out.append("")
        out.append(line)
    return "\n".join(out)


def preset_text(name: str, params_text: str, preset_dir: Path = PRESET_DIR) -> str:
    buf = io.StringIO()
    _yaml().dump(apply_preset(name, params_text, preset_dir), buf)
    desc = description(name, preset_dir)
    text = _restore_gaps(buf.getvalue(), _gaps(params_text))
    return HEADER.sub(lambda m: m.group(1) + name + (f" ({desc})." if desc else "."), text, count=1)


def write_preset(name: str, path: str | Path = "params.yaml", preset_dir: Path = PRESET_DIR) -> None:
    path = Path(path)
    read_yaml(path)  # a file that is not YAML: one line with its line and column, before the round-trip parser
    text = preset_text(name, path.read_text(encoding="utf-8"), preset_dir)
    tmp = path.with_suffix(".yaml.partial")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_params(tmp)  # validate before replacing
    except VovnetError as exc:
        tmp.unlink()
        raise VovnetError(f"preset {name}: " + str(exc).replace(str(tmp), str(path))) from None
    tmp.replace(path)
