"""The one model factory: Qwen3-VL + processor from a local directory or hub id, dtype, LoRA."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from vovnet import VovnetError
from vovnet.model.tiny import TINY_MODEL_DIR

log = logging.getLogger("vovnet.model")

LANGUAGE_MODULE_PATTERN = r".*language_model.*\.({})$"
# How the tokenizer was found, not what it is: transformers keeps these in init_kwargs and save_pretrained
# writes them, so HF_HUB_OFFLINE (forcing local_files_only) would change models/vovnet's bytes.
HUB_IDS = {"qwen3-vl-8b-instruct": "Qwen/Qwen3-VL-8B-Instruct", "qwen3-vl-8b-thinking": "Qwen/Qwen3-VL-8B-Thinking"}
LOAD_TIME_KWARGS = (
    "local_files_only",
    "is_local",
    "cache_dir",
    "force_download",
    "proxies",
    "token",
    "revision",
    "subfolder",
    "_commit_hash",
)
IMAGE_BACKEND = "torchvision"  # transformers' fast image processor (see load_processor)
# transformers' SDPA with k/v expanded to every query head by us, registered under this name (see sdpa_variant)
EXPANDED_SDPA = "vovnet_sdpa_expanded"


def check_model_dir(path: str | os.PathLike) -> None:
    """A local model directory must hold config, safetensors weights, tokenizer and processor files."""
    p = Path(path)
    if not p.is_dir():
        if Path(path).is_absolute() or str(path).startswith(("models/", "./", "../")):
            raise VovnetError(f"model directory {p} not found; {model_remedy(str(path))}")
        return  # a hub id
    missing = []
    if not (p / "config.json").exists():
        missing.append("config.json")
    if not list(p.glob("*.safetensors")):
        missing.append(
            "weights (*.safetensors)" + (" — found .bin; convert to safetensors" if list(p.glob("*.bin")) else "")
        )
    if not ((p / "tokenizer.json").exists() or (p / "vocab.json").exists()):
        missing.append("tokenizer (tokenizer.json)")
    if not ((p / "preprocessor_config.json").exists() or (p / "processor_config.json").exists()):
        missing.append("processor (preprocessor_config.json)")
    if missing:
        raise VovnetError(f"model directory {p} is incomplete: missing {', '.join(missing)}; {model_remedy(str(path))}")


def model_remedy(path: str) -> str:
    """How to get the model directory `path`: the `model` stage builds only the tiny model; others come
    from the hub on a connected machine and travel through DVC."""
    if Path(path) == Path(TINY_MODEL_DIR):
        return "build it with `dvc repro model` (or `dvc pull` it)"
    repo = HUB_IDS.get(Path(path).name, "<hub id>")
    return (
        f"`dvc pull {path}` if it is tracked; otherwise, on a machine with internet, "
        f"`python -m vovnet download-model {repo} --out {path}`, then `dvc add {path}` and `dvc push`"
    )


def resolve_dtype(name: str, device: torch.device | str | None = None) -> torch.dtype:
    """auto: bf16 where the GPU supports it, fp16 on GPUs without bf16 (V100), fp32 on CPU."""
    if name != "auto":
        try:
            return {
                "float32": torch.float32,
                "fp32": torch.float32,
                "float16": torch.float16,
                "fp16": torch.float16,
                "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16,
            }[name]
        except KeyError:
            raise VovnetError(f"params.yaml: model.dtype: unknown dtype {name!r}") from None
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def vision_dtype(dtype: torch.dtype) -> torch.dtype:
    """The vision tower's dtype: fp32 under fp16. Qwen models are trained in bf16, and Qwen3-VL's vision
    MLP is reported to exceed fp16's range (inf, then NaN); the tower is a small share of an 8B model."""
    return torch.float32 if dtype == torch.float16 else dtype


def vision_towers(model) -> list:
    """Every `visual` module (the vision tower with its mergers) in the model, wrappers included."""
    return [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "visual"]


def keep_vision_fp32(model) -> None:
    """Under fp16, run each vision tower in fp32, autocast off inside it. The boundary casts are
    transformers' own: pixel_values to the tower's dtype, its embeddings (deepstack too) to the LM's."""
    for visual in vision_towers(model):
        visual.float()
        if getattr(visual, "_vovnet_fp32", False):
            continue
        forward = visual.forward

        def fp32_forward(*args, _forward=forward, _visual=visual, **kwargs):
            device_type = next(_visual.parameters()).device.type
            with torch.autocast(device_type=device_type, enabled=False):
                return _forward(*args, **kwargs)

        visual.forward = fp32_forward
        visual._vovnet_fp32 = True


def _remote_code(cfg: dict, name: str) -> bool:
    if cfg["trust_remote_code"]:
        log.warning("trust_remote_code is ON: code from %s will be executed", name)
    return bool(cfg["trust_remote_code"])


def load_processor(name: str, cfg: dict, check: bool = True):
    """The model's processor, its image processor the torchvision-backed ("fast") one: the same grids as the
    PIL one and pixel values within the tolerance tests/test_model.py states, at a fraction of the time on
    large images. Chosen explicitly, not left to transformers' default (which follows what is installed)."""
    from transformers import AutoImageProcessor, AutoProcessor

    if check:
        check_model_dir(name)
    remote = _remote_code(cfg, name)
    try:
        processor = AutoProcessor.from_pretrained(name, trust_remote_code=remote)
        # backend= on AutoProcessor would also reach the tokenizer (whose `backend` means something else)
        processor.image_processor = AutoImageProcessor.from_pretrained(
            name, backend=IMAGE_BACKEND, trust_remote_code=remote
        )
    except OSError as exc:
        raise VovnetError(f"cannot load processor from {name}: {str(exc).splitlines()[0]}") from None
    for key in LOAD_TIME_KWARGS:
        processor.tokenizer.init_kwargs.pop(key, None)
    return processor


def load_base_model(name: str, cfg: dict, dtype: torch.dtype):
    from transformers import AutoModelForImageTextToText

    check_model_dir(name)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            name,
            dtype=dtype,
            attn_implementation=attention_implementation(cfg["attn_implementation"], cuda_sm()),
            trust_remote_code=_remote_code(cfg, name),
            use_safetensors=True,
        )
    except OSError as exc:
        raise VovnetError(f"cannot load model from {name}: {str(exc).splitlines()[0]}") from None
    if model.config.model_type not in ("qwen3_vl", "qwen3_vl_moe"):
        log.warning("model %s is %s, not Qwen3-VL; proceeding", name, model.config.model_type)
    if vision_dtype(dtype) != dtype and not zero3_partitioned():
        keep_vision_fp32(model)
    return model


def cuda_sm() -> int | None:
    """The compute capability of the current CUDA device as 70, 80, ...; None without CUDA."""
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return 10 * major + minor


def sdpa_variant(sm: int | None) -> str:
    """How the model's SDPA call gets grouped-query k/v on a GPU of capability `sm` (None: CPU). "gqa":
    transformers' own call, which passes k/v unexpanded with enable_gqa=True whenever the mask is None
    (micro-batch 1 without padding). Below sm_80 enable_gqa leaves CUDA only the MATH kernel (its fp32
    score matrix is 2.19 GiB per layer at 4,096 tokens), so there "expanded": k/v repeated to every query
    head first, without enable_gqa, which keeps the memory-efficient kernel (plan.sdpa_kernel)."""
    return "expanded" if sm is not None and sm < 80 else "gqa"


def attention_implementation(name: str, sm: int | None) -> str:
    """The attn_implementation from_pretrained gets for model.attn_implementation `name` on `sm`."""
    if name != "sdpa" or sdpa_variant(sm) != "expanded":
        return name
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(EXPANDED_SDPA, expanded_sdpa_attention)
    # a name without a mask function gets no mask at all (transformers treats it as an external backend)
    AttentionMaskInterface.register(EXPANDED_SDPA, sdpa_mask)
    return EXPANDED_SDPA


def expanded_sdpa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kw):
    """transformers' sdpa_attention_forward, except that grouped k/v are expanded (repeat_kv) before SDPA
    instead of passed with enable_gqa. A single query row (a decode step) and a model without groups go
    to transformers' own function: their score matrix is one row, and it avoids copying the KV cache."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    groups, q_length = getattr(module, "num_key_value_groups", 1), query.shape[2]
    if groups == 1 or q_length == 1 or kw.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kw)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    # as transformers: SDPA's own causal flag only without a mask
    causal = attention_mask is None and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
    if causal and key.shape[2] > q_length:  # as transformers: a prefill into an empty static cache
        key, value = key[:, :, :q_length], value[:, :, :q_length]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=causal
    )
    return out.transpose(1, 2).contiguous(), None


def zero3_partitioned() -> bool:
    """Whether from_pretrained loaded the model as ZeRO-3 partitions (zero3_init_flag in the accelerate
    config): each rank then holds an fp16 slice of every weight, which cannot be cast to fp32 here (see
    training/engine.py:restore_fp32_vision)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def add_lora(model, cfg: dict):
    """LoRA on the language model's projections only (explicit pattern: the vision tower is untouched)."""
    from peft import LoraConfig, get_peft_model

    lora = cfg["lora"]
    pattern = LANGUAGE_MODULE_PATTERN.format("|".join(lora["target_modules"]))
    peft_cfg = LoraConfig(
        r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=pattern, bias="none"
    )
    model = get_peft_model(model, peft_cfg)
    if cfg["train_vision_tower"]:
        for name, p in model.named_parameters():
            if ".visual." in name:
                p.requires_grad_(True)
    return model


def unfreeze_full(model, cfg: dict):
    """Full fine-tuning: every language-model weight trains; the vision tower only with train_vision_tower."""
    for name, p in model.named_parameters():
        p.requires_grad_(cfg["train_vision_tower"] or ".visual." not in f".{name}")
    return model


def freeze(model) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
