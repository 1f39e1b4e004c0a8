"""One module per benchmark protocol; each exposes `score_records(records, outputs, seed) -> (rows, summary)`."""
from __future__ import annotations

import importlib
from types import ModuleType

PROTOCOLS = ("mmbench", "mmmu", "textvqa")


def get_protocol(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        from vovnet import VovnetError

        raise VovnetError(f"params.yaml: unknown evaluation protocol {name!r} (known: {', '.join(PROTOCOLS)})")
    return importlib.import_module(f"vovnet.evaluation.protocols.{name}")
