"""The benchmarks: one folder per task, found from the folders (the registry is this directory listing).

A folder `vovnet/tasks/<name>/` holds whichever of these the task has:

- `adapter.py`: reads the raw format into records (an `Adapter`, see vovnet/tasks/interfaces.py);
- `protocol.py`: the official scoring and the submission writer (an `EvalProtocol`);
- `sample.py`: writes the offline sample in the raw format (a `SampleMaker`);
- `defaults.yaml`: the `dataset:` defaults under every `datasets.<x>` entry whose adapter is the task, and
  the `evaluation_set:` defaults under every evaluation set whose images come from such a dataset.

A name is a task's adapter name when its folder has adapter.py, and a protocol name when it has protocol.py.
This module imports nothing of the task modules until one is asked for, so any layer may use it (the
schema in vovnet/config.py fills params from the defaults here, then validates the result).
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from ruamel.yaml import YAML

from vovnet import VovnetError

if TYPE_CHECKING:
    from vovnet.tasks.interfaces import Adapter, EvalProtocol, SampleMaker

TASKS_DIR = Path(__file__).resolve().parent


def _having(module: str) -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in TASKS_DIR.glob(f"*/{module}.py")))


ADAPTERS = _having("adapter")    # the schema's allowed `datasets.<name>.adapter` values
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


def _load(name: str, module: str, known: tuple[str, ...], what: str, interface: type) -> ModuleType:
    if name not in known:
        raise VovnetError(f"params.yaml: unknown {what} {name!r} (known: {', '.join(known)})")
    mod = importlib.import_module(f"vovnet.tasks.{name}.{module}")
    missing = [m for m in _members(interface) if not hasattr(mod, m)]
    if missing:
        raise VovnetError(f"vovnet/tasks/{name}/{module}.py: missing {', '.join(missing)} "
                          f"(the {interface.__name__} interface in vovnet/tasks/interfaces.py)")
    return mod


def _members(interface: type) -> list[str]:
    names = set(getattr(interface, "__annotations__", {}))
    names |= {k for k, v in vars(interface).items() if callable(v) and not k.startswith("_")}
    return sorted(names)


def get_adapter(name: str) -> Adapter:
    from vovnet.tasks.interfaces import Adapter

    return cast("Adapter", _load(name, "adapter", ADAPTERS, "adapter", Adapter))


def get_protocol(name: str) -> EvalProtocol:
    from vovnet.tasks.interfaces import EvalProtocol

    return cast("EvalProtocol", _load(name, "protocol", PROTOCOLS, "evaluation protocol", EvalProtocol))


def get_sample_maker(name: str) -> SampleMaker:
    from vovnet.tasks.interfaces import SampleMaker

    return cast("SampleMaker", _load(name, "sample", SAMPLES, "sample maker", SampleMaker))
