"""A task's sample module by name (vovnet/tasks/<name>/sample.py), checked against its interface."""

from __future__ import annotations

import importlib

from vovnet.tasks import SAMPLES, checked
from vovnet.tasks.interfaces import SampleMaker


def get_sample_maker(name: str) -> SampleMaker:
    return checked(
        name,
        SAMPLES,
        "sample maker",
        lambda: importlib.import_module(f"vovnet.tasks.{name}.sample"),
        SampleMaker,
        f"vovnet/tasks/{name}/sample.py",
    )
