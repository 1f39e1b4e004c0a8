"""The one config schema: params.yaml read as YAML 1.2 and coerced by the defaults' types.

`dvc exp run -S train.lr=1e-5` writes `lr: 1e-05`; PyYAML (YAML 1.1) reads that as a string, so we
parse with ruamel (YAML 1.2) and additionally coerce every value to the type of its default.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from vovnet import VovnetError

ADAPTERS = ("mmbench", "mmbench_lite", "mmmu", "textvqa", "llava", "shapes_vqa")

DATASET_DEFAULTS: dict[str, Any] = {
    "adapter": None,          # defaults to the dataset's name where that names an adapter
    "source": None,           # http(s) URL, local path, hf:<id>, or `generate` (a generated set)
    "revision": None,         # hf: pinned revision (commit/tag); null = main
    "md5": None,              # url: expected md5 of the downloaded file ({file: md5} or one string)
    "subset": None,           # HF config name; MMMU: list of subjects or "all"
    "splits": ["dev"],
    "lang": "en",             # MMBench file language (en/cn)
    "max_samples": None,      # deterministic seeded sample (of questions; circular copies stay together)
    "image_root": None,       # llava: where bare image file names are found
    "streaming": False,       # HF streaming; output identical to non-streaming
    "download_images": True,  # false: hash and describe images but keep no bytes (text-only runs)
    "on_missing_image": "error",  # llava: error | reject
    "generator": None,        # source `generate`: the generator's spec (shapes_vqa: seed, image_size, sizes, ...)
}

MODEL = {
    "name": "models/tiny-qwen3-vl",     # local directory or hub id of the Instruct model
    "full_model_name": None,            # Thinking model used for FULL_VISION when use_thinking_for_full
    "use_thinking_for_full": False,
    "train_full_model": False,          # the Thinking model is frozen (inference only) unless true
    "trust_remote_code": False,
    "dtype": "auto",                    # auto: bf16 if supported, fp16 on V100, fp32 on CPU
    "attn_implementation": "sdpa",
    "train_vision_tower": False,
    "finetune": "lora",                 # lora: adapter on the LM | full: every weight (small models from scratch)
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
    "tiny": {"hidden_size": 64, "layers": 2, "vision_depth": 2, "vocab_size": 1024, "seed": 0,
             "vision_hidden_size": 32, "patch_size": 16, "vision_positions": 256},
}
POLICY = {
    "hidden": 64,
    "lambda_cost": 0.1,        # weight of the normalised expected vision tokens
    "cost_norm": 0,            # tokens that count as cost 1.0; 0 = the sample's own FULL cost
    "mode": "soft",            # soft (probability-weighted branch losses) | gumbel (hard, straight-through)
    "gumbel_tau": 1.0,
    "gain_loss": "regress",    # regress | rank | none: supervise the head with the per-sample value of vision
    "gain_weight": 1.0,
    "cost_shift": 0.0,         # inference-time shift of action scores by their cost (Pareto sweeps)
}
VISION_BUDGET = {
    "coarse": {"min_pixels": 256, "max_pixels": 1024},
    "full": {"min_pixels": 16384, "max_pixels": 65536},
}
TRAIN = {
    "seed": 0,
    "lr": 1.0e-4,
    "head_lr": 1.0e-3,
    "vision_lr": None,         # the vision tower's learning rate when it trains (null: lr)
    "weight_decay": 0.0,
    "batch_size": 4,
    "grad_accum": 1,
    "max_grad_norm": 1.0,
    "scheduler": "cosine",
    "warmup_ratio": 0.1,
    "gradient_checkpointing": False,
    "max_length": 2048,
    "num_workers": 0,
    "cpu_threads": 0,          # torch threads on CPU; 0 = torch's default. 1 is far faster on a busy shared CPU
    "stage1": {"epochs": 1, "mix": {"full": 0.6, "coarse": 0.2, "no": 0.2},
               "warmup_epochs": 0},  # first epochs on FULL only: a from-scratch vision tower learns to see first
    "stage2": {"epochs": 1, "train_lora": False},
    "prefix_reuse": True,      # stage 2: run the shared text prefix once and reuse its KV cache per action
    "log_every": 5,
    "save_every": 20,
    "resume": "auto",          # auto: continue from the latest checkpoint | never
    "checkpoint_dir": "checkpoints/train",
    "train_file": "data/processed/mmbench_core/mmbench_core_train.jsonl",    # stage 1 (the LM's branches)
    "policy_file": "data/processed/mmbench_core/mmbench_core_val.jsonl",     # stage 2 (the head), disjoint from stage 1
    "output_dir": "models/vovnet",
}
EVALUATION = {
    "sets": {},                 # name -> {dataset, split, protocol, images}
    "model_dir": "models/vovnet",
    "batch_size": 8,
    "max_new_tokens": 16,
    "thinking_max_new_tokens": 1024,  # FULL when the Thinking model answers: room for its <think> part
    "seed": 0,                  # MMMU's random fallback and the random baseline
    "max_samples": None,
    "max_length": 4096,         # prompt tokens per action; longer items score wrong at that action (too_long)
    "uncertainty": {            # thresholds: quantiles of the text-pass entropy on train.policy_file
        "quantile": 0.5,                          # the reported point: FULL above this quantile, else NO
        "coarse_quantiles": [0.25, 0.75],         # the COARSE variant: COARSE above the first, FULL above the second
        "sweep": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],  # the curve's quantiles
    },
    "random_ratios": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],  # the random curve's FULL shares
    "cost_shifts": [-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0, 5.0],
    "allow_overlap": False,
    "cpu_threads": 0,           # torch threads on CPU; 0 = torch's default
}

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "model": MODEL,
    "policy": POLICY,
    "vision_budget": VISION_BUDGET,
    "train": TRAIN,
    "evaluation": EVALUATION,
    "datasets": {},
    "normalize": {"workers": 1, "max_image_pixels": 89_478_485, "export_parquet": False},
    "merge": {
        "enabled": True,
        "name": "mmbench_core",
        "sources": ["mmbench/dev", "mmbench_lite/lite"],
        "heldout_source": "mmbench/dev",
        "heldout_fraction": 0.3,
        "val_fraction": 0.2,   # the val part is stage 2's training data (train.policy_file)
        "guard_sets": ["mmmu/validation", "textvqa/validation"],
        "allow_overlap": False,
    },
}


def _coerce(value: Any, default: Any, where: str) -> Any:
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise VovnetError(f"params.yaml: {where}: expected {type(default).__name__}, got {value!r}") from None
    return value


def _merge_defaults(values: Any, defaults: dict, where: str, strict: bool = True) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise VovnetError(f"params.yaml: {where}: expected a mapping, got {type(values).__name__}")
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        sub = f"{where}.{key}" if where else key
        if key not in defaults:
            if strict:
                raise VovnetError(f"params.yaml: unknown key {sub} (known: {', '.join(sorted(defaults))})")
            out[key] = value
            continue
        if isinstance(defaults[key], dict) and defaults[key] and isinstance(value, dict):
            out[key] = _merge_defaults(value, defaults[key], sub, strict)
        else:
            out[key] = _coerce(value, defaults[key], sub)
    return out


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return obj


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise VovnetError(f"{path}: file not found")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except Exception as exc:  # ruamel raises many parser classes; report them as one line
        raise VovnetError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return _to_plain(data) if data is not None else {}


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    raw = read_yaml(path)
    params = _merge_defaults(raw, DEFAULTS, "")
    params["datasets"] = {name: dataset_config(name, cfg) for name, cfg in (raw.get("datasets") or {}).items()}
    return params


def dataset_in(params: dict, name: str) -> dict:
    """The validated config of dataset `name` (a copy), or a one-line error listing the known ones."""
    if name not in params["datasets"]:
        raise VovnetError(f"params.yaml: no dataset {name!r} under datasets: (have {', '.join(params['datasets'])})")
    return dict(params["datasets"][name])


def dataset_config(name: str, cfg: dict | None) -> dict:
    cfg = _merge_defaults(cfg, DATASET_DEFAULTS, f"datasets.{name}")
    adapter = cfg["adapter"] or (name if name in ADAPTERS else None)
    if adapter not in ADAPTERS:
        raise VovnetError(
            f"params.yaml: datasets.{name}.adapter: unknown adapter {cfg['adapter'] or name!r} "
            f"(known: {', '.join(ADAPTERS)})"
        )
    cfg["adapter"] = adapter
    if cfg["max_samples"] is not None:
        cfg["max_samples"] = _coerce(cfg["max_samples"], 0, f"datasets.{name}.max_samples")
        if cfg["max_samples"] < 0:
            raise VovnetError(f"params.yaml: datasets.{name}.max_samples: must be >= 0, got {cfg['max_samples']}")
    if isinstance(cfg["splits"], str):
        cfg["splits"] = [cfg["splits"]]
    if not cfg["splits"]:
        raise VovnetError(f"params.yaml: datasets.{name}.splits: give at least one split")
    if cfg["on_missing_image"] not in ("error", "reject"):
        raise VovnetError(f"params.yaml: datasets.{name}.on_missing_image: must be error or reject")
    _apply_env_overrides(name, cfg)
    if not cfg["source"]:
        raise VovnetError(f"params.yaml: datasets.{name}.source: missing")
    return cfg


def _apply_env_overrides(name: str, cfg: dict) -> None:
    """The seed guide's environment overrides, applied on top of params."""
    hf_id = os.environ.get(f"VOVNET_HF_DATASET_ID_{name.upper()}")
    if hf_id:
        cfg["source"] = hf_id if hf_id.startswith("hf:") else f"hf:{hf_id}"
    if cfg["adapter"] == "mmbench_lite" and os.environ.get("VOVNET_MMBENCH_LITE_URL"):
        cfg["source"] = os.environ["VOVNET_MMBENCH_LITE_URL"]


def image_roots(cfg: dict) -> list[Path]:
    """Where bare image names are looked up: image_root, then VOVNET_IMAGE_ROOTS, then VOVNET_IMAGE_ROOT."""
    roots: list[str] = []
    if cfg.get("image_root"):
        roots.append(cfg["image_root"])
    roots += [r for r in os.environ.get("VOVNET_IMAGE_ROOTS", "").split(":") if r]
    if os.environ.get("VOVNET_IMAGE_ROOT"):
        roots.append(os.environ["VOVNET_IMAGE_ROOT"])
    return [Path(r) for r in roots]


def split_ref(ref: str, where: str) -> tuple[str, str]:
    """'dataset/split' -> (dataset, split)."""
    if not isinstance(ref, str) or ref.count("/") != 1:
        raise VovnetError(f"params.yaml: {where}: expected 'dataset/split', got {ref!r}")
    ds, split = ref.split("/")
    return ds, split


def processed_file(dataset: str, split: str, root: str | os.PathLike = "data/processed") -> Path:
    return Path(root) / dataset / f"{dataset}_{split}.jsonl"
