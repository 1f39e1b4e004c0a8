"""Build, save and load a VoVNet (base Qwen3-VL + LoRA adapter + policy head)."""
from __future__ import annotations

import json
from pathlib import Path


from vovnet import VovnetError
from vovnet.io_utils import atomic_path
from vovnet.model.loading import add_lora, freeze, load_base_model, load_processor, resolve_dtype
from vovnet.model.policy import PolicyHead
from vovnet.model.vovnet import VoVNet, load_head, save_head

CONFIG_FILE = "vovnet_config.json"


def _full_model(params: dict, dtype, device):
    mcfg = params["model"]
    if not mcfg["use_thinking_for_full"]:
        return None
    if not mcfg["full_model_name"]:
        raise VovnetError("params.yaml: model.use_thinking_for_full is true but model.full_model_name is empty")
    full = load_base_model(mcfg["full_model_name"], mcfg, dtype).to(device)
    if mcfg["train_full_model"]:
        full = add_lora(full, mcfg)
    else:
        freeze(full)
    return full


def build_vovnet(params: dict, device=None) -> tuple[VoVNet, object]:
    mcfg = params["model"]
    dtype = resolve_dtype(mcfg["dtype"], device)
    processor = load_processor(mcfg["name"], mcfg)
    base = load_base_model(mcfg["name"], mcfg, dtype)
    lm = add_lora(base, mcfg)
    head = PolicyHead(base.config.text_config.hidden_size, params["policy"]["hidden"])
    model = VoVNet(lm, head, _full_model(params, dtype, device), processor.tokenizer.pad_token_id,
                   processor.image_token_id)
    return model.to(device) if device is not None else model, processor


def save_vovnet(model: VoVNet, processor, params: dict, out_dir: str | Path) -> None:
    with atomic_path(out_dir) as tmp:
        model.lm.save_pretrained(tmp, safe_serialization=True)
        save_head(model.head, tmp)
        processor.save_pretrained(tmp)
        resolved = {k: params[k] for k in ("model", "policy", "vision_budget", "train", "seed")}
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
    base = load_base_model(mcfg["name"], mcfg, dtype)
    lm = PeftModel.from_pretrained(base, str(d))
    head = load_head(d)
    model = VoVNet(lm, head, _full_model({**params, "model": {**params["model"], "train_full_model": False}}, dtype, device))
    freeze(model)
    processor = load_processor(str(d), mcfg, check=False)  # saved beside the adapter
    return (model.to(device) if device is not None else model), processor, trained
