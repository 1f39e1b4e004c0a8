"""configs/accelerate/: every config parses with accelerate and names only installed or pinned packages;
the GPU requirements install line is the one the README gives; gpu_check imports and --help on CPU."""

import importlib.util
import subprocess
import sys

import pytest
from helpers import ROOT

from vovnet import VovnetError
from vovnet.launch_configs import check_launch_config, launch_configs, pinned, required_packages


def test_every_accelerate_config_parses_and_names_only_installed_or_pinned_packages():
    configs = launch_configs(ROOT)
    assert {p.name for p in configs} >= {"ddp_8gpu.yaml", "zero2_v100.yaml", "zero3_v100.yaml"}
    gpu_pins = pinned(ROOT / "requirements-gpu.txt")
    base_pins = pinned(ROOT / "requirements.txt")
    for path in configs:
        for module, pip_name in required_packages(path):
            installed = importlib.util.find_spec(module) is not None
            assert installed or pip_name in gpu_pins or pip_name in base_pins, (path, pip_name)
    assert [pkg for _, pkg in required_packages(ROOT / "configs/accelerate/zero2_v100.yaml")] == ["deepspeed"]
    assert required_packages(ROOT / "configs/accelerate/ddp_8gpu.yaml") == []


def test_gpu_requirements_are_pinned_and_installed_as_the_readme_says():
    gpu = ROOT / "requirements-gpu.txt"  # torch and torchvision for CUDA 12.6 (sm_70), see docs/servers.md
    pins = pinned(gpu)
    assert set(pins) == {"torch", "torchvision"} and all(v[0].isdigit() for v in pins.values())
    lines = [x for x in gpu.read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert len(lines) == len(pins) + 1, "the CUDA 12.6 index, then every requirement pinned with =="
    base = pinned(ROOT / "requirements.txt")
    assert all(base[k] == v for k, v in pins.items()), "the same torch and torchvision as requirements.txt"
    assert "pip install -r requirements-gpu.txt" in (ROOT / "README.md").read_text()


def test_a_config_needing_a_missing_package_is_one_line_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    problems = check_launch_config(ROOT / "configs/accelerate/zero3_v100.yaml", ROOT)
    assert problems == [
        f"{ROOT / 'configs/accelerate/zero3_v100.yaml'}: needs the package deepspeed, which is "
        "not installed: pip install -r requirements.txt"
    ]


def test_a_config_accelerate_cannot_read_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_gpus_typo: 8\n")
    with pytest.raises(VovnetError, match=r"bad.yaml: not a valid accelerate config: .*num_gpus_typo") as exc:
        required_packages(bad)
    assert "\n" not in str(exc.value)
    fp8 = tmp_path / "fp8.yaml"
    fp8.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nmixed_precision: fp8\n")
    if importlib.util.find_spec("transformer_engine") is None:
        assert check_launch_config(fp8, ROOT) == [
            f"{fp8}: needs the package transformer-engine, which is not installed: "
            "pip install transformer-engine (not pinned in this project)"
        ]


def test_gpu_check_imports_and_prints_help_on_cpu(tmp_path):
    # run as the GPU issues run it, from outside the checkout: vovnet comes from the install, not from sys.path
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "--minutes" in out and "--dtypes" in out and "plan" in out
