"""VoVNet: a Qwen3-VL (with LoRA) plus the value-of-vision policy head.

Stage 1 trains the Instruct model's LoRA on the task with vision (mixed actions; an optional Thinking
model for FULL is not used). Stage 2 trains the head: the text-only pass gives its features, every
action's per-sample task loss is computed (FULL's from the Thinking model when there is one, under no_grad
when it is frozen), and the loss is
  task(mixture or straight-through choice) + lambda_cost * E[normalised vision tokens] + gain term.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vovnet import VovnetError, actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.model.losses import answer_token_nll, per_sample_lm_loss, vision_focus_loss
from vovnet.model.policy import PolicyFeatures, PolicyHead, gumbel_straight_through, policy_features
from vovnet.model.prefix_reuse import reuse_forward

MODEL_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "pixel_values", "image_grid_thw")
HEAD_FILE, HEAD_CONFIG = "head.safetensors", "head_config.json"


def model_inputs(batch: dict, with_labels: bool = True) -> dict:
    keys = MODEL_KEYS if with_labels else tuple(k for k in MODEL_KEYS if k != "labels")
    return {k: batch[k] for k in keys if k in batch}


class VoVNet(nn.Module):
    def __init__(
        self,
        lm: nn.Module,
        head: PolicyHead,
        full_lm: nn.Module | None = None,
        pad_id: int = 0,
        image_token_id: int = 0,
    ):
        super().__init__()
        self.lm, self.head = lm, head
        self.full_lm = full_lm  # the optional Thinking model for FULL_VISION (frozen unless asked)
        self.pad_id, self.image_token_id = pad_id, image_token_id
        # what the factory left trainable in each LM (LoRA, optionally the vision tower); set_stage toggles it
        self._lm_trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
        self._full_trainable = [n for n, p in full_lm.named_parameters() if p.requires_grad] if full_lm else []

    def set_stage(self, stage: int, train_lora: bool) -> None:
        """requires_grad for one training stage. Stage 1: the Instruct model's trainable parts only.
        Stage 2: the head, plus the LMs' trainable parts only with `train_lora` (else frozen, so they
        stay out of the optimizer)."""
        lm_on = stage == 1 or train_lora
        lm_params, head_params = dict(self.lm.named_parameters()), self.head.parameters()
        for n in self._lm_trainable:
            lm_params[n].requires_grad_(lm_on)
        for p in head_params:
            p.requires_grad_(stage == 2)
        if self.full_lm is not None:
            full_params = dict(self.full_lm.named_parameters())
            for n in self._full_trainable:
                full_params[n].requires_grad_(stage == 2 and train_lora)

    def lm_for(self, action: str) -> nn.Module:
        return self.full_lm if self.full_lm is not None and actions.by_name(action).thinking else self.lm

    def thinks(self, action: str) -> bool:
        """Whether the Thinking model answers `action` (its outputs open with reasoning to strip)."""
        return self.lm_for(action) is not self.lm

    def text_pass(self, batch: dict, with_labels: bool = True) -> tuple[torch.Tensor | None, PolicyFeatures]:
        """The text-only pass: (per-sample loss or None, policy features)."""
        out = self.lm(**model_inputs(batch, with_labels), output_hidden_states=True)
        features = policy_features(out.hidden_states[-1], out.logits, batch["last_prompt_index"])
        loss = per_sample_lm_loss(out.logits, batch["labels"])[0] if with_labels else None
        return loss, features

    def policy_scores(self, features: PolicyFeatures) -> torch.Tensor:
        return self.head(features)

    def forward(
        self,
        batches: dict,
        stage: int,
        action: str = actions.RICHEST,
        policy_cfg: dict | None = None,
        train_lora: bool = False,
        generator: torch.Generator | None = None,
        prefix_reuse: bool = False,
        vision_focus: bool = False,
    ) -> dict:
        if stage == 1:  # the Instruct model for every action, FULL included
            if vision_focus and action != actions.TEXT:
                return self._focused(batches, action)
            out = self.lm(**model_inputs(batches[action]))
            return {"loss": out.loss, "task": out.loss.detach()}
        return self._stage2(batches, policy_cfg, train_lora, generator, prefix_reuse)

    def _focused(self, batches: dict, action: str) -> dict:
        """Stage 1 with train.stage1.vision_focus: a vision branch learns from what the text cannot answer
        (losses.vision_focus_loss); the text-only pass that weighs its tokens builds no graph."""
        with torch.no_grad():
            text = self.lm(**model_inputs(batches[actions.TEXT], with_labels=False))
        out = self.lm(**model_inputs(batches[action], with_labels=False))
        branch = answer_token_nll(out.logits, batches[action]["labels"])
        task = branch[0].detach().mean() if branch[0].numel() else branch[0].detach().sum()
        text_nll = answer_token_nll(text.logits, batches[actions.TEXT]["labels"])
        return {"loss": vision_focus_loss(branch, text_nll), "task": task}

    def branch_losses(self, batches: dict, prefix_reuse: bool) -> tuple[torch.Tensor, PolicyFeatures]:
        """Every action's per-sample task loss (B, actions) and the text pass's policy features."""
        encs, text = batches.get("encodings"), batches[actions.TEXT]
        if prefix_reuse and self.full_lm is None and encs and encs[0][actions.TEXT]["prefix_len"] is not None:
            # text_first: the text pass's prefix is run once for every action
            return reuse_forward(self.lm, encs, self.pad_id, self.image_token_id, text["input_ids"].device)
        loss_no, features = self.text_pass(text)
        losses = [loss_no]
        for a in ACTIONS[1:]:
            lm = self.lm_for(a)
            # a frozen Thinking model gives FULL's loss without building a graph
            grad = torch.is_grad_enabled() and (lm is not self.full_lm or self._full_trains())
            with torch.set_grad_enabled(grad):
                out = lm(**model_inputs(batches[a]))
            losses.append(per_sample_lm_loss(out.logits, batches[a]["labels"])[0])
        return torch.stack(losses, dim=-1), features

    def _full_trains(self) -> bool:
        return any(p.requires_grad for p in self.full_lm.parameters())

    def _stage2(self, batches: dict, cfg: dict, train_lora: bool, generator, prefix_reuse: bool) -> dict:
        with torch.enable_grad() if train_lora else torch.no_grad():
            branch, features = self.branch_losses(batches, prefix_reuse)  # (B, actions)
        scores = self.policy_scores(features)
        probs = torch.softmax(scores, dim=-1)
        weights = probs if cfg["mode"] == "soft" else gumbel_straight_through(scores, cfg["gumbel_tau"], generator)
        tokens = torch.stack([batches[a]["vision_tokens"] for a in ACTIONS], dim=-1).to(scores.device)
        norm = (
            tokens[:, -1:].clamp(min=1) if not cfg["cost_norm"] else torch.full_like(tokens[:, -1:], cfg["cost_norm"])
        )
        cost = tokens / norm
        task = (weights * branch).sum(-1).mean()
        exp_cost = (weights * cost).sum(-1).mean()
        loss = task + cfg["lambda_cost"] * exp_cost
        gain_term = torch.zeros((), device=scores.device)
        if cfg["gain_loss"] != "none":
            # Value of vision per action, from losses computed without gradients: loss_no - loss_a.
            utility = (branch[:, :1] - branch).detach() - cfg["lambda_cost"] * cost
            if cfg["gain_loss"] == "regress":
                rel = scores - scores[:, :1]
                gain_term = torch.nn.functional.mse_loss(rel, utility)
            else:  # rank: the best action under the utility is the target class
                gain_term = torch.nn.functional.cross_entropy(scores, utility.argmax(-1))
            loss = loss + cfg["gain_weight"] * gain_term
        chosen = weights.argmax(-1)
        return {
            "loss": loss,
            "task": task.detach(),
            "cost": exp_cost.detach(),
            "gain": gain_term.detach(),
            "actions": torch.bincount(chosen, minlength=len(ACTIONS)).float() / chosen.numel(),
            "vision_tokens": tokens.gather(1, chosen[:, None]).mean().detach(),
        }


def save_head(head: PolicyHead, out_dir: str | Path) -> None:
    out = Path(out_dir)
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(out / HEAD_FILE))
    cfg = {"hidden_size": head.hidden_size, "width": head.width, "actions": list(head.actions)}
    (out / HEAD_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")


# what every head saved before head_config.json named its actions scored
ACTIONS_BEFORE_THE_KEY = ("no", "coarse", "full")


def load_head(model_dir: str | Path) -> PolicyHead:
    """The saved head; one line when it scores other actions than vovnet/actions.py's table."""
    d = Path(model_dir)
    cfg = json.loads((d / HEAD_CONFIG).read_text())
    scored = tuple(cfg.get("actions", ACTIONS_BEFORE_THE_KEY))
    if scored != ACTIONS:
        raise VovnetError(
            f"{d / HEAD_CONFIG}: the head scores the actions {', '.join(scored)}, but vovnet/actions.py has "
            f"{', '.join(ACTIONS)}; retrain it (dvc repro train) or use the code it was trained with"
        )
    head = PolicyHead(cfg["hidden_size"], cfg["width"], scored)
    head.load_state_dict(load_file(str(d / HEAD_FILE)))
    return head
