"""A task's protocol module by name (vovnet/tasks/<name>/protocol.py), checked against its interface."""

from __future__ import annotations

import importlib

from vovnet.tasks import PROTOCOLS, checked
from vovnet.tasks.interfaces import EvalProtocol


def get_protocol(name: str) -> EvalProtocol:
    return checked(
        name,
        PROTOCOLS,
        "evaluation protocol",
        lambda: importlib.import_module(f"vovnet.tasks.{name}.protocol"),
        EvalProtocol,
        f"vovnet/tasks/{name}/protocol.py",
    )
