"""Build, save and load a VoVNet (base Qwen3-VL + LoRA adapter or fully trained weights + policy head).

`model.finetune: lora` trains a LoRA adapter on the language model and saves only the adapter;
`full` trains every language-model weight (for small models trained from scratch, where an adapter
cannot carry the task) and saves the whole model. The vision tower trains in either mode only with
`model.train_vision_tower`. The saved folder says which it holds (vovnet_config.json's model.finetune).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vovnet import VovnetError
from vovnet.config import trained_policy
from vovnet.io_utils import atomic_path
from vovnet.model.loading import add_lora, freeze, load_base_model, load_processor, resolve_dtype, unfreeze_full
from vovnet.model.policy import PolicyHead
from vovnet.model.vovnet import VoVNet, load_head, save_head

CONFIG_FILE = "vovnet_config.json"
FINETUNE = ("lora", "full")


def finetune_mode(mcfg: dict) -> str:
    mode = mcfg.get("finetune", "lora")
    if mode not in FINETUNE:
        raise VovnetError(f"params.yaml: model.finetune: must be one of {', '.join(FINETUNE)}, got {mode!r}")
    return mode


def _full_model(mcfg: dict, dtype, device, train: bool):
    """The Thinking model that answers FULL (model.use_thinking_for_full), with a LoRA when it trains."""
    wanted, name = mcfg["use_thinking_for_full"], mcfg["full_model_name"]  # both are dvc.yaml params of the stage
    if not wanted:
        return None
    if not name:
        raise VovnetError("params.yaml: model.use_thinking_for_full is true but model.full_model_name is empty")
    full = load_base_model(name, mcfg, dtype).to(device)
    if train:
        full = add_lora(full, mcfg)
    else:
        freeze(full)
    return full


def full_chat_template(params: dict) -> str | None:
    """The Thinking model's own chat template, which FULL's prompts are rendered with when it answers FULL
    (its template opens the `<think>` block itself); None: no Thinking model, or it carries no template."""
    mcfg = params["model"]
    if not mcfg["use_thinking_for_full"]:
        return None
    return getattr(load_processor(mcfg["full_model_name"], mcfg), "chat_template", None)


def _with_prompts(model: VoVNet, order: str, params: dict) -> VoVNet:
    """What the Encoder needs to render this model's prompts: the prompt order and FULL's template."""
    model.prompt_order, model.full_template = order, full_chat_template(params)
    return model


def build_vovnet(params: dict, device=None) -> tuple[VoVNet, object]:
    mcfg = params["model"]
    dtype = resolve_dtype(mcfg["dtype"], device)
    processor = load_processor(mcfg["name"], mcfg)
    base = load_base_model(mcfg["name"], mcfg, dtype)
    lm = add_lora(base, mcfg) if finetune_mode(mcfg) == "lora" else unfreeze_full(base, mcfg)
    head = PolicyHead(base.config.text_config.hidden_size, params["policy"]["hidden"])
    full = _full_model(mcfg, dtype, device, train=mcfg["train_full_model"])
    model = VoVNet(lm, head, full, processor.tokenizer.pad_token_id, processor.image_token_id)
    # What this run trains (adapter or full weights, head), in the dtype it is trained and saved in:
    # checkpoints and the saved model hold exactly these.
    model.trained_dtypes = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    model.trained_names = frozenset(model.trained_dtypes)
    _with_prompts(model, mcfg["prompt_order"], params)
    return model.to(device) if device is not None else model, processor


def fp32_master_weights(lm) -> None:
    """Trainable weights in fp32 under an fp16 model: autocast computes in fp16, the optimizer steps fp32
    weights, and GradScaler can unscale their gradients (it refuses fp16 gradients: "Attempting to unscale
    FP16 gradients"). LoRA is fp32 already (peft); a full fine-tune's language model becomes fp32 here,
    which `python -m vovnet plan` counts. The trainer calls it outside DeepSpeed only: the engine casts
    the module to fp16 and keeps its own fp32 master weights."""
    for p in lm.parameters():
        if p.requires_grad and p.dtype == torch.float16:
            p.data = p.data.float()


def save_vovnet(model: VoVNet, processor, params: dict, out_dir: str | Path) -> None:
    with atomic_path(out_dir) as tmp:
        model.lm.save_pretrained(tmp, safe_serialization=True)  # lora: the adapter; full: the whole model
        save_head(model.head, tmp)
        processor.save_pretrained(tmp)
        resolved = {k: params[k] for k in ("model", "vision_budget", "train", "seed")}
        resolved["policy"] = trained_policy(params["policy"])  # inference-time knobs are evaluation's
        (tmp / CONFIG_FILE).write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")


def load_vovnet(model_dir: str | Path, params: dict, device=None) -> tuple[VoVNet, object, dict]:
    """The trained VoVNet on top of its base model; returns (model, processor, training config)."""
    from peft import PeftModel

    d = Path(model_dir)
    if not (d / CONFIG_FILE).exists():
        raise VovnetError(f"{d}: no trained VoVNet here (run `dvc repro train` or `dvc pull`)")
    trained = json.loads((d / CONFIG_FILE).read_text())
    mcfg = {**trained["model"], "trust_remote_code": params["model"]["trust_remote_code"]}
    dtype = resolve_dtype(params["model"]["dtype"], device)
    if finetune_mode(mcfg) == "full":
        lm = load_base_model(str(d), mcfg, dtype)  # the trained weights replace the base model's
    else:
        lm = PeftModel.from_pretrained(load_base_model(mcfg["name"], mcfg, dtype), str(d))
    head = load_head(d)
    model = VoVNet(lm, head, _full_model(params["model"], dtype, device, train=False))
    freeze(model)
    # the order the model was trained with travels with it; directories saved before the key: text_first
    _with_prompts(model, trained["model"].get("prompt_order", "text_first"), params)
    processor = load_processor(str(d), mcfg, check=False)  # saved beside the adapter
    return (model.to(device) if device is not None else model), processor, trained
