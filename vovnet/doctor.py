"""`python -m vovnet doctor`: one line per thing a GPU-server user should know before a long run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from vovnet import VovnetError
from vovnet.config import load_params, processed_file
from vovnet.launch_configs import check_launch_config, launch_configs


def _dvc(*args: str) -> tuple[int, str]:
    try:
        p = subprocess.run(
            ["dvc", *args], capture_output=True, text=True, timeout=120, env={**os.environ, "DVC_NO_ANALYTICS": "1"}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return p.returncode, p.stdout + p.stderr


def checks(params_path: str = "params.yaml") -> list[tuple[str, str]]:
    """(status, message) with status ok | warn | fail."""
    from vovnet.model.loading import check_model_dir

    out: list[tuple[str, str]] = []
    params = load_params(params_path)
    names = [params["model"]["name"]]
    if params["model"]["use_thinking_for_full"]:
        names.append(params["model"]["full_model_name"])
    for name in names:
        try:
            check_model_dir(name)
            out.append(("ok", f"model {name}: complete"))
        except VovnetError as exc:
            out.append(("fail", f"model: {exc}"))
    for name, s in params["evaluation"]["sets"].items():
        f = processed_file(s["dataset"], s["split"])
        out.append(
            ("ok", f"data {f}: present")
            if f.exists()
            else ("fail", f"data {f}: missing (evaluation set {name}; run `dvc pull` or `dvc repro`)")
        )
    train_file = Path(params["train"]["train_file"])
    out.append(
        ("ok", f"data {train_file}: present")
        if train_file.exists()
        else ("fail", f"data {train_file}: missing (run `dvc pull` or `dvc repro merge`)")
    )
    code, text = _dvc("status", "--json")
    if code == 0:
        stale = json.loads(text or "{}")
        out.append(
            ("ok", "dvc status: pipeline up to date")
            if not stale
            else ("warn", f"dvc status: {len(stale)} stage(s) would rerun: {', '.join(sorted(stale)[:6])}")
        )
    else:
        out.append(("warn", f"dvc status failed: {text.strip().splitlines()[-1] if text.strip() else code}"))
    code, text = _dvc("remote", "list")
    remotes = [line.split() for line in text.splitlines() if line.strip()] if code == 0 else []
    if not remotes:
        out.append(("warn", "dvc remote: none configured (`dvc remote add -d store <url>`)"))
    for name, url, *_ in remotes:
        if "://" not in url or url.startswith("file://"):
            path = Path(url.removeprefix("file://"))
            out.append(
                ("ok", f"remote {name}: {path} reachable")
                if path.is_dir()
                else ("fail", f"remote {name}: {path} not found")
            )
        else:
            out.append(("ok", f"remote {name}: {url} (network remote; `dvc pull` will test it)"))
    out += _devices(params)
    for cfg in launch_configs():
        try:
            problems = check_launch_config(cfg)
        except VovnetError as exc:
            out.append(("fail", f"launch config {exc}"))
            continue
        out += [("warn", f"launch config {p}") for p in problems] or [("ok", f"launch config {cfg}: ready")]
    out.append(_launch(params))
    out.append(_analytics())
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        val = os.environ.get(flag)
        out.append(
            ("ok", f"{flag}={val}") if val == "1" else ("warn", f"{flag} is not 1 (set it on servers without internet)")
        )
    return out


def _devices(params: dict) -> list[tuple[str, str]]:
    """The launcher's preflight, device part: kernels for every GPU, a usable driver, one kind of GPU, free
    memory, and no large model on CPU by accident (the memory plan follows with `run_plan`)."""
    from vovnet import gpu_env
    from vovnet.launch import visible_cuda_devices
    from vovnet.preflight import cpu_check, device_checks

    out = device_checks(gpu_env.probe())
    cpu = cpu_check(params, visible_cuda_devices())
    return out + ([cpu] if cpu else [])


def _launch(params: dict) -> tuple[str, str]:
    """Which launch `dvc repro` runs for train and evaluate@, and the batch each process gets."""
    from vovnet.launch import batch_plan, resolve_launch

    try:
        launch = resolve_launch(params["launch"])
        tcfg = params["train"]
        plan = batch_plan(tcfg["batch_size"], tcfg["micro_batch_size"], launch.processes)
    except VovnetError as exc:
        return "fail", f"launch: {exc}"
    return "ok", (
        f"launch: dvc repro runs train and evaluate@ as {launch.describe()}; train: global batch "
        f"{plan.batch} = {plan.processes} process(es) x {plan.micro} per forward x {plan.accumulation} "
        "accumulated"
    )


def launch_processes(params: dict) -> int | None:
    """launch.processes when it names a number (plan for it); None for auto."""
    n = params["launch"]["processes"]
    return None if n == "auto" else int(n)


def target_gpus(gpus: int | None, gpu_gib: float | None, sm: int | None = None) -> tuple[int, float, int | None]:
    """The run's GPUs: as given, else the visible ones (their count, the least free memory, the lowest
    capability), else the mission's 8 x 32 GiB V100s."""
    from vovnet import gpu_env
    from vovnet.model.plan_memory import DEFAULT_GPU_GIB, DEFAULT_GPUS

    dev = gpu_env.probe()
    if dev.gpus:
        gpus = gpus or len(dev.gpus)
        gpu_gib = gpu_gib or gpu_env.free_gib(dev)
        sm = sm or min(g.sm for g in dev.gpus)
    return gpus or DEFAULT_GPUS, gpu_gib or DEFAULT_GPU_GIB, sm


def run_plan(
    params_path: str = "params.yaml",
    gpus: int | None = None,
    gpu_gib: float | None = None,
    dtype: str | None = None,
    sm: int | None = None,
) -> int:
    """`python -m vovnet plan`: the table, then one line for each of the configured launch, evaluate@ and
    predict that does not fit (exit 1); a bad input is one line (raised as VovnetError)."""
    from vovnet.model.plan_memory import format_plan, make_plan
    from vovnet.model.plan_verdict import plan_problems

    params = load_params(params_path)
    gpus, gpu_gib, sm = target_gpus(gpus or launch_processes(params), gpu_gib, sm)
    plan = make_plan(params, gpus, gpu_gib, dtype, sm=sm)
    print(format_plan(plan, params["model"]["name"]))
    problems = plan_problems(params, plan)
    for line in problems:
        print(f"[fail] {line}")
    return 1 if problems else 0


def _analytics() -> tuple[str, str]:
    """DVC sends usage analytics unless told not to; without network each command waits on it."""
    if os.environ.get("DVC_NO_ANALYTICS", "").lower() in ("1", "true", "yes"):
        return "ok", "DVC_NO_ANALYTICS=1"
    code, text = _dvc("config", "core.analytics")
    if code == 0 and text.strip().lower() == "false":
        return "ok", "dvc analytics: off in .dvc/config (export DVC_NO_ANALYTICS=1 for other repositories too)"
    return "warn", "DVC_NO_ANALYTICS is not set (export DVC_NO_ANALYTICS=1 on servers without network)"


def run_doctor(params_path: str = "params.yaml") -> int:
    results = checks(params_path)
    for status, msg in results:
        print(f"[{status}] {msg}")
    failed = any(s == "fail" for s, _ in results)
    try:
        failed = run_plan(params_path) != 0 or failed
    except VovnetError as exc:
        print(f"[fail] plan: {exc}")
        failed = True
    return 1 if failed else 0
