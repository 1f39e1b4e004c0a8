"""Records -> model inputs for each action of vovnet/actions.py, with the real vision-token cost."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vovnet import VovnetError, actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.data.image_store import ImageStore
from vovnet.model import prompts
from vovnet.model.budgets import image_inputs, tokens_per_image

IGNORE = -100


class Encoder:
    """`order`: model.prompt_order; `full_template`: the chat template that the prompts of the actions the
    Thinking model answers (the table's `thinking`) are rendered with, when it answers them (None: the
    processor's own); `question_text`: the user turn's text, record -> str (an evaluation set's prompt
    variant; None: prompts.question_text)."""

    def __init__(
        self,
        processor,
        budgets: dict,
        max_length: int | None,
        order: str = "text_first",
        full_template: str | None = None,
        question_text=None,
    ):
        # max_length None: the caller applies its own limit per action (evaluation, predict)
        self.processor, self.budgets, self.max_length = processor, budgets, max_length
        self.tokenizer = processor.tokenizer
        self.merge_size = processor.image_processor.merge_size
        self.image_token_id = processor.image_token_id
        self.renderer = prompts.Renderer.of(processor, order, text_of=question_text)
        self.full_renderer = (
            prompts.Renderer.of(processor, order, full_template, question_text) if full_template else self.renderer
        )

    def with_budget(self, action: str, budget: dict) -> Encoder:
        """This encoder (prompts and all) with `action`'s images resized within another pixel budget."""
        other = copy.copy(self)
        other.budgets = {**self.budgets, action: budget}
        return other

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prefix_len(self, rec: dict) -> int | None:
        """Tokens of the prefix every action's prompt shares (text_first), None when there is none."""
        prefix = self.renderer.shared_prefix(rec)
        return None if prefix is None else len(self._ids(prefix))

    def encode(
        self, rec: dict, images: list, action: str, with_target: bool = True, prefix_len: int | None = None
    ) -> dict:
        vis = {}
        n_tokens: list[int] = []
        row = actions.by_name(action)
        if not row.text_only and images:
            vis = image_inputs(self.processor.image_processor, images, self.budgets[action])
            n_tokens = tokens_per_image(vis["image_grid_thw"], self.merge_size)
        renderer = self.full_renderer if row.thinking else self.renderer
        prompt_ids = self._ids(renderer.prompt(rec, n_tokens))
        if prefix_len is None:
            prefix_len = self.prefix_len(rec)
        if renderer is not self.renderer:
            prefix_len = None  # another model's prompt: nothing of the text pass's cache is reused
        answer_ids = []
        if with_target:
            tgt = renderer.target(rec)
            if tgt is None:
                raise VovnetError(f"record {rec['id']}: no answer to train on")
            answer_ids = self._ids(tgt)
        ids = prompt_ids + answer_ids
        if self.max_length is not None and len(ids) > self.max_length:
            fix = (
                "raise it (this is the text alone)"
                if row.text_only
                else f"raise it or lower vision_budget.{action}.max_pixels"
            )
            raise VovnetError(
                f"record {rec['id']}: {len(ids)} tokens with {action} vision exceed train.max_length "
                f"{self.max_length}; {fix}"
            )
        return {
            "input_ids": ids,
            "labels": [IGNORE] * len(prompt_ids) + answer_ids,
            "prompt_len": len(prompt_ids),
            "prefix_len": prefix_len,
            "vision_tokens": sum(n_tokens),
            **vis,
        }

    def encode_all(self, rec: dict, images: list, with_target: bool = True) -> dict:
        prefix_len = self.prefix_len(rec)  # the same for every action
        return {a: self.encode(rec, images, a, with_target, prefix_len) for a in ACTIONS}


def collate(samples: list[dict], pad_id: int, image_token_id: int, left_pad: bool = False) -> dict:
    """Pad one action's encodings into a batch (right padding for training, left for generation)."""
    width = max(len(s["input_ids"]) for s in samples)
    ids, labels, mask = [], [], []
    for s in samples:
        pad = width - len(s["input_ids"])
        if left_pad:
            ids.append([pad_id] * pad + s["input_ids"])
            labels.append([IGNORE] * pad + s["labels"])
            mask.append([0] * pad + [1] * len(s["input_ids"]))
        else:
            ids.append(s["input_ids"] + [pad_id] * pad)
            labels.append(s["labels"] + [IGNORE] * pad)
            mask.append([1] * len(s["input_ids"]) + [0] * pad)
    input_ids = torch.tensor(ids)
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
        "mm_token_type_ids": (input_ids == image_token_id).int(),
    }
    with_px = [s for s in samples if "pixel_values" in s]
    if with_px:
        batch["pixel_values"] = torch.cat([s["pixel_values"] for s in with_px])
        batch["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in with_px])
    offset = width if left_pad else 0
    batch["last_prompt_index"] = torch.tensor(
        [(offset - len(s["input_ids"]) if left_pad else 0) + s["prompt_len"] - 1 for s in samples]
    )
    batch["vision_tokens"] = torch.tensor([s["vision_tokens"] for s in samples], dtype=torch.float32)
    return batch


class RecordDataset(Dataset):
    """Records plus their images, read from each record's own dataset image store."""

    def __init__(
        self,
        records: list[dict],
        encoder: Encoder,
        processed_root: str | Path = "data/processed",
        with_target: bool = True,
    ):
        self.records, self.encoder, self.with_target = records, encoder, with_target
        self.root = Path(processed_root)
        self._stores: dict[str, ImageStore] = {}

    def __len__(self) -> int:
        return len(self.records)

    def images(self, rec: dict) -> list:
        if not rec["images"]:
            return []
        store = self._stores.get(rec["dataset"])
        if store is None:
            store = self._stores[rec["dataset"]] = ImageStore(self.root / rec["dataset"])
        return [store.open(im["sha256"]) for im in rec["images"]]

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        return self.encoder.encode_all(rec, self.images(rec), self.with_target)


class ActionCollator:
    def __init__(self, pad_id: int, image_token_id: int, left_pad: bool = False):
        self.pad_id, self.image_token_id, self.left_pad = pad_id, image_token_id, left_pad

    def __call__(self, samples: list[dict]) -> dict:
        out = {a: collate([s[a] for s in samples], self.pad_id, self.image_token_id, self.left_pad) for a in ACTIONS}
        out["encodings"] = samples  # the uncollated encodings, for prefix reuse
        return out
