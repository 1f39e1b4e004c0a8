"""The task registry: which benchmarks there are (one folder each under vovnet/tasks/), their defaults, and
the one place that imports a task's module by name.

A folder `vovnet/tasks/<name>/` holds whichever of these the task has:

- `adapter.py`: reads the raw format into records (an `Adapter`, vovnet/data/interfaces.py);
- `protocol.py`: the official scoring and the submission writer (an `EvalProtocol`,
  vovnet/evaluation/interfaces.py);
- `sample.py`: writes the offline sample in the raw format (a `SampleMaker`, vovnet/data/interfaces.py);
- `defaults.yaml`: the `dataset:` defaults under every `datasets.<x>` entry whose adapter is the task, and
  the `evaluation_set:` defaults under every evaluation set whose protocol is the task.

The registry sits below everything else (the schema in vovnet/config.py fills params from the defaults
here), so it imports nothing of ours above vovnet/__init__: the listing reads the folder, and a loader
checks a module against the interface its caller hands in. The engine never calls a loader: a stage (or
a CLI) resolves the plugin and hands it down. Each loader imports with a literal f-string in its own
function, so vovnet/deps.py counts a stage as using the adapters, say, only when it imports get_adapter.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, TypeVar

from ruamel.yaml import YAML

from vovnet import VovnetError

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
T = TypeVar("T")


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


def set_with_defaults(entry: Any) -> Any:
    """An `evaluation.sets.<name>` entry over its protocol's evaluation_set defaults. The entry names its
    protocol (the schema requires it), so evaluate@<set> depends on that one task folder."""
    protocol = entry.get("protocol") if isinstance(entry, dict) else None
    if protocol not in PROTOCOLS:
        return entry
    return {**defaults(protocol)["evaluation_set"], **entry}


def with_defaults(params: Any) -> Any:
    """Raw params with every dataset entry and every evaluation set filled from its task's defaults.yaml;
    anything malformed is left for the schema to report."""
    if not isinstance(params, dict):
        return params
    out, datasets, ev = dict(params), params.get("datasets"), params.get("evaluation")
    if isinstance(datasets, dict):
        out["datasets"] = {name: dataset_with_defaults(name, entry) for name, entry in datasets.items()}
    if isinstance(ev, dict) and isinstance(ev.get("sets"), dict):
        out["evaluation"] = {**ev, "sets": {name: set_with_defaults(entry) for name, entry in ev["sets"].items()}}
    return out


# --- the loaders: each imports one kind of task module by name -------------------------------------------


def get_adapter(name: str, interface: type[T]) -> T:
    """vovnet/tasks/<name>/adapter.py, checked against `interface` (vovnet.data.interfaces.Adapter)."""
    return _checked(
        name, ADAPTERS, "adapter", lambda: importlib.import_module(f"vovnet.tasks.{name}.adapter"), interface
    )


def get_protocol(name: str, interface: type[T]) -> T:
    """vovnet/tasks/<name>/protocol.py, checked against `interface` (vovnet.evaluation.interfaces.EvalProtocol)."""
    return _checked(
        name,
        PROTOCOLS,
        "evaluation protocol",
        lambda: importlib.import_module(f"vovnet.tasks.{name}.protocol"),
        interface,
    )


def get_sample_maker(name: str, interface: type[T]) -> T:
    """vovnet/tasks/<name>/sample.py, checked against `interface` (vovnet.data.interfaces.SampleMaker)."""
    return _checked(
        name, SAMPLES, "sample maker", lambda: importlib.import_module(f"vovnet.tasks.{name}.sample"), interface
    )


def _checked(name: str, known: tuple[str, ...], what: str, load: Callable[[], ModuleType], interface: type) -> Any:
    """`load()` after the name is known, then every member of the interface present, or one line naming
    the module and what it lacks."""
    if name not in known:
        raise VovnetError(f"params.yaml: unknown {what} {name!r} (known: {', '.join(known)})")
    mod = load()
    missing = [m for m in members(interface) if not hasattr(mod, m)]
    if missing:
        where = mod.__name__.replace(".", "/") + ".py"
        raise VovnetError(
            f"{where}: missing {', '.join(missing)} (the {interface.__name__} interface in "
            f"{interface.__module__.replace('.', '/')}.py)"
        )
    return mod


def members(interface: type) -> list[str]:
    """The names a module must define to satisfy a typing.Protocol class: its annotations and methods."""
    names = set(getattr(interface, "__annotations__", {}))
    names |= {k for k, v in vars(interface).items() if callable(v) and not k.startswith("_")}
    return sorted(names)
