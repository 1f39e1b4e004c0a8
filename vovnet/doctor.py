"""`python -m vovnet doctor`: one line per thing a GPU-server user should know before a long run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from vovnet import VovnetError
from vovnet.config import load_params
from vovnet.launch_configs import check_launch_config, launch_configs


def _dvc(*args: str) -> tuple[int, str]:
    try:
        p = subprocess.run(
            ["dvc", *args], capture_output=True, text=True, timeout=120, env={**os.environ, "DVC_NO_ANALYTICS": "1"}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return p.returncode, p.stdout + p.stderr


def pipeline_state(lock: str | Path = "dvc.lock") -> list[tuple[str, str]]:
    """Staleness as DVC sees it (dvc.lock and `dvc status`), not from which files exist: a stage whose
    outputs only are missing here wants `dvc pull`; one whose deps, params or command changed reruns."""
    if not Path(lock).is_file():
        return [("fail", f"{lock}: none; nothing was reproduced or pulled here (`dvc pull`, or `dvc repro`)")]
    code, text = _dvc("status", "--json")
    if code != 0:
        return [("warn", f"dvc status failed: {text.strip().splitlines()[-1] if text.strip() else code}")]
    try:
        stale = json.loads(text or "{}")
    except ValueError:
        return [("warn", f"dvc status: unreadable output ({text.strip()[:80]})")]
    missing = sorted(n for n, changes in stale.items() if _only_missing_outputs(changes))
    rerun = sorted(n for n in stale if n not in missing)
    out = []
    if missing:
        out.append(("fail", f"dvc status: {len(missing)} stage(s) lack outputs here: {_few(missing)} (`dvc pull`)"))
    if rerun:
        out.append(("warn", f"dvc status: {len(rerun)} stage(s) would rerun: {_few(rerun)}"))
    return out or [("ok", "dvc status: pipeline up to date")]


def _only_missing_outputs(changes: list) -> bool:
    """`dvc status --json`: a stage's changes are "changed deps"/"changed outs" mappings of path -> state."""
    outs = [c["changed outs"] for c in changes if isinstance(c, dict) and "changed outs" in c]
    others = [c for c in changes if not (isinstance(c, dict) and "changed outs" in c)]
    return not others and bool(outs) and all(state in ("deleted", "not in cache") for o in outs for state in o.values())


def _few(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


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
    out += pipeline_state()
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
    out += [_cache_links(), _experiment_remote()]
    out += _devices(params)
    for cfg in launch_configs():
        try:
            problems = check_launch_config(cfg)
        except VovnetError as exc:
            out.append(("fail", f"launch config {exc}"))
            continue
        out += [("warn", f"launch config {p}") for p in problems] or [("ok", f"launch config {cfg}: ready")]
    out.append(_launch(params))
    out += _nodes(params, params_path)
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


def _nodes(params: dict, params_path: str) -> list[tuple[str, str]]:
    """Each other node of a multi-node launch: reachable, same commit, params, data, torch and GPUs."""
    from vovnet.nodes import node_plan, node_problems

    try:
        nodes = node_plan(params["launch"])
        if nodes is None:
            return []
        problems = node_problems(nodes, params["launch"], params_path)
    except VovnetError as exc:
        return [("fail", str(exc))]
    return [("fail", p) for p in problems] or [("ok", f"nodes: {', '.join(nodes.hosts)} run what this one does")]


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


LINKS = "reflink,hardlink,symlink"


def _cache_links() -> tuple[str, str]:
    """A queued experiment's copy and every checkout get the outputs by DVC's cache.type; DVC's default
    (reflink, else copy) copies the weights and image stores per experiment on file systems without reflinks."""
    code, text = _dvc("config", "cache.type")
    kinds = text.strip() if code == 0 else ""
    if kinds and "copy" not in kinds.split(","):
        return "ok", f"dvc cache.type: {kinds} (outputs are linked, not copied; DVC makes them read-only)"
    return "warn", (
        f"dvc cache.type: {kinds or 'default (reflink, else copy)'}: each experiment copy and checkout may copy the "
        f"weights and image stores; `dvc config --local cache.type {LINKS}`"
    )


def _experiment_remote() -> tuple[str, str]:
    """`dvc exp push` reads the DVC remote from the experiment's commit (and .dvc/config.local): a remote added
    to .dvc/config after that commit is not seen, and DVC reports the push without uploading anything."""
    try:
        p = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".dvc/config"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "warn", f"git: {exc}"
    if p.returncode == 1:
        return "warn", (
            ".dvc/config has uncommitted changes: experiments use the committed file, so `dvc exp push` misses a "
            "remote added since; commit it, or keep the remote in .dvc/config.local (`dvc remote add --local`)"
        )
    return "ok", ".dvc/config committed (experiments push to the remotes it names, and to .dvc/config.local's)"


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
