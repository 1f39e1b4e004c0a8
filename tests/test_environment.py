"""Versioned outputs do not depend on the environment: the same training hashes the same online and offline."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from ruamel.yaml import YAML

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _hashes(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow  # two whole training runs in a subprocess
def test_models_vovnet_hashes_the_same_with_and_without_hf_hub_offline(workspace):
    y = YAML()
    d = y.load((workspace / "params.yaml").read_text())
    train_file = workspace / d["train"]["train_file"]
    small = workspace / "data" / "env_train.jsonl"  # a few records: the outputs' bytes are the point, not quality
    small.write_text("".join(train_file.read_text().splitlines(keepends=True)[:8]))
    d["train"]["train_file"] = str(small.relative_to(workspace))
    d["train"]["stage1"]["epochs"] = 1
    d["train"]["stage2"]["epochs"] = 1
    d["train"]["output_dir"] = "models/env"
    d["train"]["checkpoint_dir"] = "checkpoints/env"
    params = workspace / "params_env.yaml"
    with open(params, "w") as fh:
        y.dump(d, fh)
    base_env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    runs = {}
    for label, extra in (("offline", {"HF_HUB_OFFLINE": "1"}), ("default", {})):
        shutil.rmtree(workspace / "models" / "env", ignore_errors=True)
        p = subprocess.run(
            [
                sys.executable,
                str(ROOT / "stages" / "train.py"),
                "--params",
                str(params),
                "--metrics",
                "metrics/env.json",
            ],
            cwd=workspace,
            env={**base_env, **extra},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == 0, p.stderr[-2000:]
        runs[label] = _hashes(workspace / "models" / "env")
    assert "tokenizer_config.json" in runs["offline"] and "adapter_model.safetensors" in runs["offline"]
    assert runs["offline"] == runs["default"]
    text = (workspace / "models" / "env" / "tokenizer_config.json").read_text()
    assert "local_files_only" not in text and str(workspace) not in text
