"""The benchmarks: one folder per task, found from the folders (the registry is this directory listing).

A folder `vovnet/tasks/<name>/` holds whichever of these the task has:

- `adapter.py`: reads the raw format into records (an `Adapter`, see vovnet/tasks/interfaces.py);
- `protocol.py`: the official scoring and the submission writer (an `EvalProtocol`);
- `sample.py`: writes the offline sample in the raw format (a `SampleMaker`);
- `defaults.yaml`: the `dataset:` defaults under every `datasets.<x>` entry whose adapter is the task, and
  the `evaluation_set:` defaults under every evaluation set whose images come from such a dataset.

A name is a task's adapter name when its folder has adapter.py, and a protocol name when it has protocol.py.
This module imports no task module, so any layer may use it (the schema in vovnet/config.py fills params
from the defaults here, then validates the result). The loaders are one module per kind
(vovnet/tasks/adapters.py, protocols.py, samples.py): a stage that imports one depends on that kind of task
module only (vovnet/deps.py reads the import's f-string).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ruamel.yaml import YAML

from vovnet import VovnetError

TASKS_DIR = Path(__file__).resolve().parent


def _having(module: str) -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in TASKS_DIR.glob(f"*/{module}.py")))


ADAPTERS = _having("adapter")  # the schema's allowed `datasets.<name>.adapter` values
PROTOCOLS = _having("protocol")  # the schema's allowed `evaluation.sets.<name>.protocol` values
SAMPLES = _having("sample")


SECTIONS = ("dataset", "evaluation_set")


def defaults_file(name: str) -> Path:
    return TASKS_DIR / name / "defaults.yaml"


@lru_cache(maxsize=None)
def defaults(name: str) -> dict:
    """vovnet/tasks/<name>/defaults.yaml: {"dataset": {...}, "evaluation_set": {...}} (either may be empty)."""
    path = defaults_file(name)
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = data or {}
    wrong = [k for k in data if k not in SECTIONS] + [k for k in SECTIONS if not isinstance(data.get(k) or {}, dict)]
    if wrong:
        raise VovnetError(f"{path}: {wrong[0]!r}: expected the mappings {' and '.join(SECTIONS)}")
    return {k: data.get(k) or {} for k in SECTIONS}


def task_of(name: Any, entry: Any) -> str | None:
    """The task whose defaults an entry starts from: its adapter, else (none, or one the schema will reject)
    the task named like the entry, so that one bad adapter name is reported once."""
    adapter = entry.get("adapter") if isinstance(entry, dict) else None
    if adapter in ADAPTERS:
        return adapter
    return name if name in ADAPTERS else None


def dataset_with_defaults(name: str, entry: Any) -> Any:
    """A `datasets.<name>` entry over its task's dataset defaults (a key the entry lists replaces the default)."""
    task = task_of(name, entry)
    if task is None or not isinstance(entry, dict):
        return entry
    return {**defaults(task)["dataset"], **entry}


def with_defaults(params: Any) -> Any:
    """Raw params with every dataset entry, and every evaluation set (from the task of its `images` dataset),
    filled from its task's defaults.yaml; anything malformed is left for the schema to report."""
    if not isinstance(params, dict):
        return params
    out, datasets, ev = dict(params), params.get("datasets"), params.get("evaluation")
    if isinstance(datasets, dict):
        out["datasets"] = {name: dataset_with_defaults(name, entry) for name, entry in datasets.items()}
    if isinstance(ev, dict) and isinstance(ev.get("sets"), dict):
        sets = {}
        for name, entry in ev["sets"].items():
            images = entry.get("images") if isinstance(entry, dict) else None
            task = task_of(images, datasets.get(images)) if isinstance(datasets, dict) and images in datasets else None
            sets[name] = {**defaults(task)["evaluation_set"], **entry} if task else entry
        out["evaluation"] = {**ev, "sets": sets}
    return out


def checked(name: str, known: tuple[str, ...], what: str, load, interface: type, where: str) -> ModuleType:
    """`load()` (one task's module, imported by the caller with a literal f-string so that vovnet/deps.py
    can read which family it is) after the name is known, checked against its interface."""
    if name not in known:
        raise VovnetError(f"params.yaml: unknown {what} {name!r} (known: {', '.join(known)})")
    mod = load()
    missing = [m for m in _members(interface) if not hasattr(mod, m)]
    if missing:
        raise VovnetError(
            f"{where}: missing {', '.join(missing)} (the {interface.__name__} interface in vovnet/tasks/interfaces.py)"
        )
    return mod


def _members(interface: type) -> list[str]:
    names = set(getattr(interface, "__annotations__", {}))
    names |= {k for k, v in vars(interface).items() if callable(v) and not k.startswith("_")}
    return sorted(names)
