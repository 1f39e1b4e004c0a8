"""The benchmarks: one folder per task, found from the folders (the registry is this directory listing).

A folder `vovnet/tasks/<name>/` holds whichever of these the task has:

- `adapter.py`: reads the raw format into records (an `Adapter`, see vovnet/tasks/interfaces.py);
- `protocol.py`: the official scoring and the submission writer (an `EvalProtocol`);
- `sample.py`: writes the offline sample in the raw format (a `SampleMaker`);
- `defaults.yaml`: the `dataset:` defaults under every `datasets.<x>` entry whose adapter is the task, and
  the `evaluation_set:` defaults under every evaluation set whose images come from such a dataset.

A name is a task's adapter name when its folder has adapter.py, and a protocol name when it has protocol.py.
This module imports nothing of the task modules until one is asked for, so any layer may use it.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, cast

from vovnet import VovnetError

if TYPE_CHECKING:
    from vovnet.tasks.interfaces import Adapter, EvalProtocol, SampleMaker

TASKS_DIR = Path(__file__).resolve().parent


def _having(module: str) -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in TASKS_DIR.glob(f"*/{module}.py")))


ADAPTERS = _having("adapter")    # the schema's allowed `datasets.<name>.adapter` values
PROTOCOLS = _having("protocol")  # the schema's allowed `evaluation.sets.<name>.protocol` values
SAMPLES = _having("sample")


def defaults_file(name: str) -> Path:
    return TASKS_DIR / name / "defaults.yaml"


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
