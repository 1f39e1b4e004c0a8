"""One module per raw format. Each exposes `source_files(raw_dir, cfg, split)` (the files one split reads), `iter_rows(raw_dir, cfg, split)` and
`build(dataset, split, row, images) -> record` (raising records.Reject for a bad row)."""
from __future__ import annotations

import importlib
from types import ModuleType


def get_adapter(name: str) -> ModuleType:
    return importlib.import_module(f"vovnet.data.adapters.{name}")
