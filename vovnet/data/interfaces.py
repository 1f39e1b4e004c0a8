"""What data's engine calls in a task's modules, as typing.Protocol classes: normalize and download call an
adapter, the sample driver (vovnet/data/samples.py) a sample maker. A task module satisfies one by defining
these names at module level; vovnet/registry.py checks them when a stage loads the module."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

if TYPE_CHECKING:
    from vovnet.data.records import Row
    from vovnet.data.tsv import TsvRowError


class Adapter(Protocol):
    """adapter.py: one raw format -> normalized records (vovnet/data/records.py)."""

    def source_files(self, raw_dir: Path, cfg: dict, split: str) -> list[Path]:
        """The files one split reads (their fingerprints go into metrics/normalize/<name>.json)."""

    def iter_rows(self, raw_dir: Path, cfg: dict, split: str) -> Iterator[Row | TsvRowError]:
        """The split's raw rows, in file order; a row it cannot parse comes as a TsvRowError (a reject)."""

    def build(self, dataset: str, split: str, row: Row, images: list[dict]) -> dict:
        """One record from one row and its stored images; raises records.Reject(field, reason) for a bad row."""

    def hf_configs(self, raw_dir: Path, cfg: dict) -> list[str | None] | None:
        """The Hugging Face configs a run reads (download fetches only their files); None: not an HF layout."""


class SampleMaker(Protocol):
    """sample.py: the offline sample in data/samples/<task>/, in the benchmark's real raw layout."""

    ORDER: int  # the samples share one random generator, drawn in ORDER (so committed samples stay as they are)

    def make_sample(self, out: Path, rng: random.Random, seed: int) -> None:
        """Writes the sample under `out` (data/samples/<task>); `rng` is the shared generator, `seed` its seed."""
