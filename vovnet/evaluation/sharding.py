"""Evaluation over processes, identical to one process.

The records are cut into the batches one process would run (`evaluation.batch_size`, in order); process r
runs batches r, r + N, ... whole, so every generate call sees exactly the batch it would see alone. The
main process gathers the results and puts them back by record id, checking that every record came back
exactly once: nothing lost, nothing duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from vovnet import VovnetError
from vovnet.launch import process_state

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_shard() -> Shard:
    """This process's place: one process on its own, or a rank under accelerate launch / torchrun."""
    state = process_state()
    return Shard(state.process_index, state.num_processes, state.device)


def shard_batches(n: int, batch_size: int, shard: Shard) -> list[range]:
    starts = range(0, n, batch_size)[shard.rank :: shard.world]
    return [range(s, min(s + batch_size, n)) for s in starts]


def run_sharded(
    ids: list[str], batch_size: int, shard: Shard, run_batch: Callable[[range], list[T]], what: str
) -> list[T] | None:
    """`run_batch(indices)` gives one result per index. Returns every result in `ids` order on the main
    process, None on the others."""
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise VovnetError(f"{what}: record id {dup} appears more than once; ids must be unique")
    mine = []
    for batch in shard_batches(len(ids), batch_size, shard):
        mine.extend(zip((ids[i] for i in batch), run_batch(batch)))
    if shard.world > 1:
        from accelerate.utils import gather_object

        mine = gather_object(mine)
    return assemble(ids, mine, what) if shard.is_main else None


def assemble(ids: list[str], gathered: list[tuple[str, T]], what: str) -> list[T]:
    """The gathered (id, result) pairs in `ids` order; a record lost or returned twice is an error."""
    by_id: dict[str, T] = {}
    twice = []
    for rid, result in gathered:
        if rid in by_id:
            twice.append(rid)
        by_id[rid] = result
    known = set(ids)
    lost = [rid for rid in ids if rid not in by_id]
    stray = [rid for rid in by_id if rid not in known]
    if twice or lost or stray:
        example = (twice or lost or stray)[0]
        raise VovnetError(
            f"{what}: gathering the processes' outputs found {len(lost)} record(s) missing, "
            f"{len(twice)} returned twice and {len(stray)} unknown (e.g. {example})"
        )
    return [by_id[rid] for rid in ids]
