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

ADAPTERS = ("mmbench", "mmbench_lite", "mmmu", "textvqa", "llava")

DATASET_DEFAULTS: dict[str, Any] = {
    "adapter": None,          # defaults to the dataset's name where that names an adapter
    "source": None,           # http(s) URL, local path, or hf:<id>
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
}

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "datasets": {},
    "normalize": {"workers": 1, "max_image_pixels": 89_478_485, "export_parquet": False},
    "merge": {
        "enabled": True,
        "name": "mmbench_core",
        "sources": ["mmbench/dev", "mmbench_lite/lite"],
        "heldout_source": "mmbench/dev",
        "heldout_fraction": 0.3,
        "val_fraction": 0.1,
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


_SECTION_DEFAULTS: dict[str, dict] = {}


def register_section(name: str, defaults: dict) -> None:
    """Model/training/evaluation modules add their sections so there is still one schema."""
    _SECTION_DEFAULTS[name] = defaults


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    raw = read_yaml(path)
    defaults = {**DEFAULTS, **_SECTION_DEFAULTS}
    params = _merge_defaults(raw, defaults, "", strict=False)
    params["datasets"] = {name: dataset_config(name, cfg) for name, cfg in (raw.get("datasets") or {}).items()}
    return params


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
