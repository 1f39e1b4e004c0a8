"""Vision budgets and their real cost: the processor's own grid (image_grid_thw) and merge size."""

from __future__ import annotations

import torch

from vovnet.actions import NAMES as ACTIONS  # noqa: F401  the table's names, in order, for this layer's readers


def image_inputs(image_processor, images: list, budget: dict) -> dict:
    """pixel_values / image_grid_thw for `images` resized within the budget's pixel limits."""
    size = {"shortest_edge": int(budget["min_pixels"]), "longest_edge": int(budget["max_pixels"])}
    out = image_processor(images=images, size=size, return_tensors="pt")
    return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}


def tokens_per_image(image_grid_thw: torch.Tensor, merge_size: int) -> list[int]:
    return [int(n) for n in (image_grid_thw.prod(dim=-1) // (merge_size**2)).tolist()]


def budget_tokens(image_processor, sizes: list[tuple[int, int]], budget: dict) -> int:
    """Vision tokens that images of these (width, height) sizes cost at a budget, without decoding them
    (the processor's own resize rule; equal to what image_inputs then yields)."""
    limits = {"min_pixels": int(budget["min_pixels"]), "max_pixels": int(budget["max_pixels"])}
    merge = image_processor.merge_size**2
    return sum(image_processor.get_number_of_image_patches(h, w, limits) // merge for w, h in sizes)
