"""The GPU install: torch and torchvision from PyTorch's CUDA 12.6 index (sm_70 kernels) at the versions
requirements.txt pins, then requirements.txt, as README.md and docs/servers.md give it."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from vovnet.gpu_env import CU126_INDEX
from vovnet.launch_configs import pinned

GPU = ROOT / "requirements-gpu.txt"


def test_gpu_install_is_the_cu126_index_at_the_versions_requirements_txt_pins():
    lines = [x.strip() for x in GPU.read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert CU126_INDEX == "https://download.pytorch.org/whl/cu126"
    assert lines[0] == f"--index-url {CU126_INDEX}"
    base = pinned(ROOT / "requirements.txt")
    assert pinned(GPU) == {"torch": base["torch"], "torchvision": base["torchvision"]}
    assert len(lines) == 3, "the index and the torch/torchvision pair, nothing else"


@pytest.mark.parametrize("page", ["README.md", "docs/servers.md"])
def test_docs_install_the_cu126_pair_first_then_the_rest(page):
    from test_readme import readme_commands

    text = (ROOT / page).read_text(encoding="utf-8")
    block = text[text.index("pip install -r requirements-gpu.txt") :].splitlines()
    assert block[1].startswith("pip install -r requirements.txt "), "the rest comes right after the cu126 pair"
    assert "pip install -r requirements-gpu.txt" in readme_commands()
    assert CU126_INDEX in text
    flat = " ".join(text.split())
    assert "last release with Volta wheels" in flat and "driver >= 525" in flat


@pytest.mark.slow  # asks PyPI: fails, not skips, where the registry cannot be reached
def test_pip_resolves_the_rest_of_the_gpu_requirements_against_the_pinned_torch(tmp_path):
    """`pip install --dry-run` of requirements.txt from scratch: every other pin agrees with the torch and
    torchvision that requirements-gpu.txt installs (resolved here from PyPI at the same versions)."""
    report = tmp_path / "report.json"
    p = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
        + ["-r", str(ROOT / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert p.returncode == 0, f"pip could not resolve requirements.txt (needs PyPI): {p.stderr.strip()[-600:]}"
    installs = json.loads(report.read_text())["install"]
    resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    gpu = pinned(GPU)
    assert resolved["torch"].split("+")[0] == gpu["torch"]
    assert resolved["torchvision"].split("+")[0] == gpu["torchvision"]
    assert "deepspeed" in resolved
