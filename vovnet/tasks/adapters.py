"""A task's adapter module by name (vovnet/tasks/<name>/adapter.py), checked against its interface."""

from __future__ import annotations

import importlib

from vovnet.tasks import ADAPTERS, checked
from vovnet.tasks.interfaces import Adapter


def get_adapter(name: str) -> Adapter:
    return checked(
        name,
        ADAPTERS,
        "adapter",
        lambda: importlib.import_module(f"vovnet.tasks.{name}.adapter"),
        Adapter,
        f"vovnet/tasks/{name}/adapter.py",
    )
