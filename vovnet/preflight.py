"""What `doctor` and the launcher check before a heavy stage starts, one line each naming the fix: torch has
kernels for every visible GPU, the driver is one torch can use, the GPUs are of one kind, the memory plan
fits, and a large model is not about to run on CPU by accident.

Above the model layer (it runs the plan); the launcher imports it only inside main(), as a CLI would.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vovnet import VovnetError, gpu_env

Check = tuple[str, str]  # (ok | warn | fail, one line)


def model_parameters(mcfg: dict) -> int | None:
    """Parameters of the model(s) a stage loads, from config.json on the meta device (no weights read);
    None when model.name has no config.json (the stage then fails on its own, with its own line)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    names = [mcfg["name"]] + ([mcfg["full_model_name"]] if mcfg["use_thinking_for_full"] else [])
    total = 0
    for name in names:
        if not (Path(name) / "config.json").is_file():
            return None
        config = AutoConfig.from_pretrained(name)
        with torch.device("meta"):
            try:
                model = AutoModelForImageTextToText.from_config(config)
            except ValueError:  # a text-only architecture
                model = AutoModelForCausalLM.from_config(config)
        total += sum(p.numel() for p in model.parameters())
    return total


def cpu_check(params: dict, cuda_devices: int) -> Check | None:
    """A model above launch.cpu_max_params on a launch without CUDA is a GPU problem, not a CPU run, unless
    launch.cpu_intended says it is one."""
    lcfg = params["launch"]
    if cuda_devices or lcfg["cpu_intended"]:
        return None
    n = model_parameters(params["model"])
    if n is None or n <= lcfg["cpu_max_params"]:
        return None
    return (
        "fail",
        f"launch: no usable CUDA device, so train and evaluate@ would run {params['model']['name']} "
        f"({n / 1e9:.2f}B parameters) on CPU: fix the gpu line above (see docs/servers.md), or set "
        f"launch.cpu_intended: true if a CPU run is meant (limit launch.cpu_max_params: {lcfg['cpu_max_params']})",
    )


def device_checks(dev: gpu_env.Devices) -> list[Check]:
    problems = gpu_env.problems(dev)
    out: list[Check] = [("fail", p) for p in problems]
    out += [("warn", line) for line in gpu_env.busy_lines(dev)]
    if not problems:
        out.insert(0, ("ok" if dev.gpus else "warn", gpu_env.summary(dev)))
    return out


def plan_checks(params: dict, dev: gpu_env.Devices, processes: int, train: bool, inference: bool) -> list[Check]:
    """The memory plan for this machine's GPUs: `processes` of the smallest free memory, its capability."""
    from vovnet.model.plan_memory import make_plan
    from vovnet.model.plan_verdict import plan_problems

    sm = min(g.sm for g in dev.gpus)
    try:
        plan = make_plan(params, processes, gpu_env.free_gib(dev), sm=sm)
    except VovnetError as exc:
        return [("fail", f"plan: {exc}")]
    lines = plan_problems(params, plan, train=train, inference=inference)
    if lines:
        return [("fail", line) for line in lines]
    return [("ok", f"plan: fits {processes} x {plan.gpu_gib:.1f} GiB free (sm_{sm}, {plan.kernel} attention)")]


def stage_of(target: list[str]) -> str | None:
    """train or evaluate for `stages/train.py ...` or `-m stages.evaluate ...`; None for anything else."""
    script = next((a for a in target if not a.startswith("-")), "")
    stem = Path(script).stem if script.endswith(".py") else script.rsplit(".", 1)[-1]
    return stem if stem in ("train", "evaluate") else None


def launch_checks(params: dict, cuda_devices: int, processes: int, stage: str | None) -> list[Check]:
    """Everything the launcher checks before it starts a process; `cuda_devices` as resolve_launch saw them."""
    dev = gpu_env.probe()
    out = device_checks(dev)
    if any(s == "fail" for s, _ in out):
        return out
    cpu = cpu_check(params, cuda_devices)
    if cpu:
        out.append(cpu)
    if cuda_devices and dev.gpus and stage is not None:
        out += plan_checks(params, dev, processes, train=stage == "train", inference=stage == "evaluate")
    return out


def require_ready(params: dict, cuda_devices: int, processes: int, target: list[str]) -> None:
    """The launcher's preflight: every failing line to stderr, then the first as the one-line error."""
    fails = [
        msg for status, msg in launch_checks(params, cuda_devices, processes, stage_of(target)) if status == "fail"
    ]
    for msg in fails[1:]:
        print(f"error: {msg}", file=sys.stderr)
    if fails:
        raise VovnetError(fails[0])
