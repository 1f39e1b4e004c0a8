"""The `accelerate launch` configs in configs/accelerate/: parsed by accelerate itself, the packages each
one needs, with where they are pinned, and whether it runs DeepSpeed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from vovnet import VovnetError

CONFIG_DIR = Path("configs/accelerate")
REQUIREMENTS = "requirements.txt"
# distributed_type / mixed_precision -> (import name, pip name) of what accelerate then imports
NEEDS = {
    ("distributed_type", "DEEPSPEED"): ("deepspeed", "deepspeed"),
    ("distributed_type", "MEGATRON_LM"): ("megatron", "megatron-core"),
    ("mixed_precision", "fp8"): ("transformer_engine", "transformer-engine"),
}


def pinned(requirements: Path) -> dict[str, str]:
    """pip name (lower case) -> version pinned with == in a requirements file."""
    out = {}
    if requirements.is_file():
        for line in requirements.read_text(encoding="utf-8").splitlines():
            m = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
            if m:
                out[m.group(1).lower().replace("_", "-")] = m.group(3)
    return out


def _load(path: str | Path):
    """accelerate's own reading of a config file; one it cannot parse is one line naming the file."""
    from accelerate.commands.config.config_args import load_config_from_file

    try:
        cfg = load_config_from_file(str(path))
    except (ValueError, TypeError, OSError) as exc:
        raise VovnetError(f"{path}: not a valid accelerate config: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml's parser errors have many classes; one line for each
        raise VovnetError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    return cfg


def _value(field) -> str:
    return str(getattr(field, "value", field))


def uses_deepspeed(path: str | Path) -> bool:
    return _value(_load(path).distributed_type) == "DEEPSPEED"


def deepspeed_settings(path: str | Path) -> dict:
    """The config's `deepspeed_config` section (zero_stage, gradient_clipping, zero3_init_flag, ...)."""
    return dict(_load(path).deepspeed_config or {})


def required_packages(path: str | Path) -> list[tuple[str, str]]:
    """(import name, pip name) for every package the config needs beyond torch and accelerate;
    a config accelerate cannot parse is one line naming the file."""
    cfg = _load(path)
    values = {"distributed_type": _value(cfg.distributed_type), "mixed_precision": _value(cfg.mixed_precision)}
    needs = [pkg for (key, value), pkg in NEEDS.items() if values[key] == value]
    ds_file = (cfg.deepspeed_config or {}).get("deepspeed_config_file")
    if ds_file and not Path(ds_file).is_file():
        raise VovnetError(f"{path}: deepspeed_config.deepspeed_config_file {ds_file} not found")
    return needs


def check_launch_config(path: str | Path, root: str | Path = ".") -> list[str]:
    """One line per package the config needs that is not installed (naming the install command)."""
    pins = pinned(Path(root) / REQUIREMENTS)
    problems = []
    for module, pip_name in required_packages(path):
        if importlib.util.find_spec(module) is not None:
            continue
        if pip_name in pins:
            how = f"pip install -r {REQUIREMENTS}"
        else:
            how = f"pip install {pip_name} (not pinned in this project)"
        problems.append(f"{path}: needs the package {pip_name}, which is not installed: {how}")
    return problems


def launch_configs(root: str | Path = ".") -> list[Path]:
    return sorted((Path(root) / CONFIG_DIR).glob("*.yaml")) + sorted((Path(root) / CONFIG_DIR).glob("*.json"))
