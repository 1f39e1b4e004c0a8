"""GPU, driver and torch checks of doctor and the launcher's preflight, on mocked devices (capability, count,
name, memory, driver) and the arch list of the torch wheel installed here."""

from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT

from vovnet import VovnetError, gpu_env
from vovnet.gpu_env import GIB, Driver, kernel_runs
from vovnet.preflight import cpu_check, require_ready

FIXTURE_8B = ROOT / "tests" / "fixtures" / "qwen3-vl-8b-instruct"
V100 = ("Tesla V100-SXM2-32GB", (7, 0), 32)
V100_16 = ("Tesla V100-SXM2-16GB", (7, 0), 16)
T4 = ("Tesla T4", (7, 5), 16)
CU126_ARCHS = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]  # PyTorch 2.14's cu126 wheels


def mock_gpus(monkeypatch, specs, arch=None, driver=None, used=None):
    """torch sees `specs` (name, capability, GiB); the driver lists them (or `driver`); `used`: GiB that other
    processes hold per GPU. The arch list stays the installed wheel's unless `arch` is given."""
    props = [
        SimpleNamespace(name=n, major=c[0], minor=c[1], total_memory=int(g * GIB), uuid=f"0000-{i}")
        for i, (n, c, g) in enumerate(specs)
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(props))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(props))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props[i])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (props[i].major, props[i].minor))
    if arch is not None:
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arch)
    used = {f"GPU-0000-{i}": int(u * GIB) for i, u in enumerate(used or [])}
    drv = driver or Driver("580.95.05", (13, 0), [p.name for p in props], used)
    monkeypatch.setattr(gpu_env, "driver", lambda: drv)


def paper_params(tmp_path, model=FIXTURE_8B) -> dict:
    import shutil

    from vovnet.config import load_params
    from vovnet.presets import write_preset

    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    write_preset("paper", tmp_path / "params.yaml")
    params = load_params(tmp_path / "params.yaml")
    params["model"]["name"] = str(model)
    params["launch"]["config_file"] = str(ROOT / params["launch"]["config_file"])
    return params


@pytest.mark.parametrize(
    "arch, sm, runs",
    [
        ("sm_70", 70, True),
        ("sm_70", 75, True),  # SASS: same major, from its minor up
        ("sm_75", 70, False),
        ("sm_80", 86, True),
        ("sm_86", 80, False),
        ("sm_80", 90, False),  # never across a major
        ("compute_70", 90, True),  # PTX: the driver compiles it for any later GPU
        ("compute_80", 75, False),
        ("sm_90a", 90, True),  # arch-specific: that capability only
        ("sm_90a", 100, False),
        ("sm_100f", 103, True),
        ("nonsense", 70, False),
    ],
)
def test_kernel_compatibility_rules(arch, sm, runs):
    assert kernel_runs(arch, sm) is runs


def test_pypi_wheel_on_a_v100_fails_naming_sm70_and_the_cu126_install(monkeypatch):
    real = torch.cuda.get_arch_list()
    assert real and not any(kernel_runs(a, 70) for a in real), "this test needs a wheel without sm_70, as PyPI's"
    mock_gpus(monkeypatch, [V100] * 4)
    problems = gpu_env.problems(gpu_env.probe())
    assert len(problems) == 1
    assert problems[0].startswith("gpu: GPUs 0-3 (Tesla V100-SXM2-32GB) is sm_70, but torch ")
    assert "CUDA 12.6" in problems[0] and "pip install -r requirements-gpu.txt" in problems[0]


def test_an_arch_list_with_sm70_passes(monkeypatch):
    mock_gpus(monkeypatch, [V100] * 8, arch=CU126_ARCHS)
    dev = gpu_env.probe()
    assert gpu_env.problems(dev) == []
    assert gpu_env.summary(dev).startswith("gpu: 8 x Tesla V100-SXM2-32GB (sm_70, 32 GiB)")
    assert "fp16 only" in gpu_env.summary(dev)


def test_a_driver_too_old_for_torchs_cuda_is_one_line(monkeypatch):
    # an R470 driver (CUDA 11.4): torch's CUDA 13 runtime cannot start, so torch sees no GPU at all
    mock_gpus(monkeypatch, [], driver=Driver("470.82.01", (11, 4), [V100[0]] * 8))
    problems = gpu_env.problems(gpu_env.probe())
    assert len(problems) == 1
    assert f"NVIDIA driver 470.82.01 runs CUDA 11.4 at most, but torch {torch.__version__}" in problems[0]
    assert "(driver >= 580)" in problems[0] and "pip install -r requirements-gpu.txt" in problems[0]


def test_gpus_the_driver_lists_but_torch_cannot_see_are_a_failure_unless_hidden(monkeypatch):
    mock_gpus(monkeypatch, [], driver=Driver("580.95.05", (13, 0), [V100[0]] * 2))
    problems = gpu_env.problems(gpu_env.probe())
    assert len(problems) == 1 and "lists 2 GPU(s) (Tesla V100-SXM2-32GB) but torch" in problems[0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hidden on purpose: a CPU run
    assert gpu_env.problems(gpu_env.probe()) == []


def test_mixed_gpus_are_one_line(monkeypatch):
    mock_gpus(monkeypatch, [V100, V100, T4], arch=CU126_ARCHS)
    assert gpu_env.problems(gpu_env.probe()) == [
        "gpu: GPUs of different kinds are mixed (GPUs 0-1 Tesla V100-SXM2-32GB 32 GiB, GPU 2 Tesla T4 16 GiB); "
        "the plan, fp16/bf16 and the ZeRO shards assume one kind: set CUDA_VISIBLE_DEVICES to GPUs of one kind"
    ]


def test_memory_other_processes_hold_is_found_by_uuid_and_planned_against(monkeypatch):
    mock_gpus(monkeypatch, [V100] * 2, arch=CU126_ARCHS, used=[0.5, 6.0])
    dev = gpu_env.probe()
    assert gpu_env.free_gib(dev) == pytest.approx(26.0)
    assert [line.split(" has ")[0] for line in gpu_env.busy_lines(dev)] == ["gpu: GPU 1"]


def test_without_nvml_the_driver_is_read_from_proc(tmp_path, monkeypatch):
    (tmp_path / "gpus" / "0000:3b:00.0").mkdir(parents=True)
    (tmp_path / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
    )
    (tmp_path / "gpus" / "0000:3b:00.0" / "information").write_text("Model: \t\t Tesla V100-PCIE-16GB\nIRQ: 1\n")
    monkeypatch.setattr(gpu_env, "PROC_DRIVER", tmp_path)
    monkeypatch.setattr(gpu_env, "_nvml", lambda: None)
    assert gpu_env.driver() == Driver("535.104.05", (12, 0), ["Tesla V100-PCIE-16GB"])
    (tmp_path / "version").write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release\n")
    assert gpu_env.driver().version == "580.65.06" and gpu_env.driver().cuda == (13, 0)


def test_an_8b_on_cpu_fails_unless_a_cpu_run_is_intended(tmp_path, tiny_model_dir):
    params = paper_params(tmp_path)
    status, line = cpu_check(params, cuda_devices=0)
    assert status == "fail" and "(8.77B parameters) on CPU" in line
    assert "launch.cpu_intended: true" in line and "launch.cpu_max_params: 500000000" in line
    assert cpu_check(params, cuda_devices=8) is None
    params["launch"]["cpu_intended"] = True
    assert cpu_check(params, cuda_devices=0) is None
    params["launch"]["cpu_intended"] = False
    params["model"]["name"] = str(tiny_model_dir)
    assert cpu_check(params, cuda_devices=0) is None


def _launch(tmp_path, monkeypatch, params_yaml: str | None = None):
    """The launcher's main() on `stages/train.py`; returns the argv it would have started, if any."""
    from vovnet import launch

    started = []
    monkeypatch.setattr(launch.subprocess, "call", lambda cmd, env=None: started.append(cmd) or 0)
    monkeypatch.chdir(tmp_path)
    if params_yaml is not None:
        (tmp_path / "params.yaml").write_text(params_yaml)
    launch.main(["stages/train.py"])
    return started


def test_launcher_preflight_stops_the_pypi_wheel_on_v100_before_any_process(tmp_path, monkeypatch):
    mock_gpus(monkeypatch, [V100] * 4)
    with pytest.raises(VovnetError, match=r"is sm_70, but torch .* pip install -r requirements-gpu.txt"):
        _launch(tmp_path, monkeypatch, "launch:\n  processes: auto\n")


def test_launcher_preflight_stops_an_8b_on_cpu_after_an_old_driver(tmp_path, monkeypatch):
    mock_gpus(monkeypatch, [], driver=Driver("470.82.01", (11, 4), [V100[0]] * 8))
    yaml = f"model:\n  name: {FIXTURE_8B}\nlaunch:\n  processes: auto\n"
    with pytest.raises(VovnetError, match=r"^gpu: NVIDIA driver 470.82.01 runs CUDA 11.4"):
        _launch(tmp_path, monkeypatch, yaml)
    mock_gpus(monkeypatch, [], driver=Driver())  # no NVIDIA driver at all: a CPU machine
    with pytest.raises(VovnetError, match=r"^launch: no usable CUDA device, .* \(8.77B parameters\) on CPU"):
        _launch(tmp_path, monkeypatch, yaml)


def test_launcher_preflight_stops_a_plan_that_does_not_fit(tmp_path, monkeypatch):
    mock_gpus(monkeypatch, [V100_16] * 8, arch=CU126_ARCHS)
    params = paper_params(tmp_path)
    with pytest.raises(VovnetError) as exc:
        require_ready(params, 8, 8, ["stages/train.py"])
    assert str(exc.value).startswith("plan: train under ZeRO-2 (")
    assert "largest term weights (17.4 GiB); cheapest change that fits: launch.config_file: " in str(exc.value)
    mock_gpus(monkeypatch, [V100] * 8, arch=CU126_ARCHS)
    require_ready(params, 8, 8, ["stages/train.py"])  # fits 8 x 32 GiB
