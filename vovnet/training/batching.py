"""The sample order of the global batch, whatever the number of processes.

`train.batch_size` (vovnet.launch.batch_plan) is the batch of one optimizer step over all processes. It is cut into
`processes x accumulation` micro-batches of `micro` samples: slot j of a step holds the samples
order[step * batch + j * micro : ... + micro], and process r runs slots r, r + processes, ... in turn. So
one optimizer step sees the same samples in the same micro-batches on 1 process or 8, and the same
params give the same experiment.
"""

from __future__ import annotations

import torch

from vovnet.launch import BatchPlan


def epoch_order(n: int, seed: int, stage: int, epoch: int, batch: int) -> list[int]:
    """One epoch's sample order, padded (with its own first samples) to whole optimizer steps."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + stage * 1009 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    return order + order[: (-len(order)) % batch]


def process_micro_batches(order: list[int], plan: BatchPlan, rank: int, first_step: int = 0) -> list[list[int]]:
    """This process's micro-batches of one epoch, from optimizer step `first_step` on, in the order it runs them."""
    out = []
    for start in range(first_step * plan.batch, len(order), plan.batch):
        for a in range(plan.accumulation):
            slot = a * plan.processes + rank
            out.append(order[start + slot * plan.micro : start + (slot + 1) * plan.micro])
    return out
