import os
import sys
from pathlib import Path

import pytest
from helpers import MMB_COLUMNS, ROOT, b64, jpeg_bytes, mmb_row, write_tsv  # noqa: F401  shared: tests/helpers.py

sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from vovnet.config import dataset_config, load_params  # noqa: E402


# The stages load a task's plugin by name and hand it to the engine (vovnet/registry.py); these do the same
# for tests that call the engine directly.
def adapter_of(cfg: dict):
    from vovnet.data.interfaces import Adapter
    from vovnet.registry import get_adapter

    return get_adapter(cfg["adapter"], Adapter)


def get_protocol(name: str):
    from vovnet import registry
    from vovnet.evaluation.interfaces import EvalProtocol

    return registry.get_protocol(name, EvalProtocol)


def normalize_dataset(name, cfg, raw_dir, out_dir, **kw):
    """vovnet.data.normalize.normalize_dataset with the adapter stages/normalize.py loads (cfg["adapter"])."""
    from vovnet.data import normalize

    return normalize.normalize_dataset(name, cfg, raw_dir, out_dir, adapter=adapter_of(cfg), **kw)


def hf_patterns(folder, cfg):
    """vovnet.data.hub_fetch.hf_patterns with the dataset's adapter, as stages/download.py hands it down."""
    from vovnet.data import hub_fetch

    return hub_fetch.hf_patterns(folder, cfg, adapter_of(cfg))


def build_tiny_model(out, model_cfg):
    """The tiny model as the `model` stage builds it: its tokenizer also learns the demo task's words."""
    from vovnet.model.tiny import build_tiny_model as build
    from vovnet.tasks.shapes_vqa import adapter as shapes_vqa

    build(out, model_cfg, shapes_vqa.vocabulary())


def ds_cfg(name, adapter=None, **kw):
    cfg = {"adapter": adapter or name, "source": "unused", "splits": kw.pop("splits", ["dev"])}
    cfg.update(kw)
    return dataset_config(name, cfg)


@pytest.fixture(scope="session")
def params():
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, params):
    out = tmp_path_factory.mktemp("models") / "tiny"
    build_tiny_model(out, params["model"])
    return out


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, tiny_model_dir):
    """A working folder with the samples normalized and merged, and the tiny model, as `dvc repro` makes them."""
    import shutil

    from vovnet.data.download import fetch
    from vovnet.data.merge import merge, write_merged

    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(ROOT / "data" / "samples", ws / "data" / "samples")
    shutil.copy(ROOT / "params.yaml", ws / "params.yaml")
    shutil.copytree(tiny_model_dir, ws / "models" / "tiny-qwen3-vl")
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        params = load_params("params.yaml")
        for name, cfg in params["datasets"].items():
            fetch(name, cfg, f"data/raw/{name}", adapter_of(cfg))
            normalize_dataset(
                name,
                cfg,
                f"data/raw/{name}",
                f"data/processed/{name}",
                seed=0,
                max_image_pixels=params["normalize"]["max_image_pixels"],
            )
        out, _ = merge(params["merge"], params["seed"])
        write_merged(out, params["merge"]["name"])
    finally:
        os.chdir(cwd)
    return ws


@pytest.fixture
def in_workspace(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    return workspace


# --- temporary copies of the repository, for dvc-level tests ---
import contextlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

# `python` in a stage's command is the interpreter running the tests (with the project installed in it)
ENV = {
    **os.environ,
    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def sh(cwd, *cmd, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def up_to_date(status: str) -> bool:
    """`dvc status` has nothing to report: no stage, download@ included, would rerun."""
    return "Data and pipelines are up to date" in status


def copy_repo(dst):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = ROOT / f.decode()
        if src.is_file():
            (dst / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f.decode())
    sh(dst, "git", "init", "-q")
    sh(dst, "git", "add", "-A")
    sh(dst, "git", "commit", "-qm", "copy")
    return dst


FAKE_TOKEN = "hf_vovnet" + "FAKEtoken" + "0123456789abcdef"  # assembled: the source never holds it whole


class Reproduced:
    """A fresh copy of the repository after `dvc repro` (the whole sample pipeline) and what it printed."""

    def __init__(self, path: Path, output: str):
        self.path, self.output = path, output

    def copy(self, dst: Path) -> Path:
        """A copy of its own (work tree, git and DVC cache), for a test that changes it."""
        shutil.copytree(self.path, dst, symlinks=True)
        return dst


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Reproduced:
    """`dvc repro` of a fresh copy, once per session (minutes): the pipeline and remote tests each take a
    copy of it instead of reproducing their own. A Hugging Face token is in every stage's environment, so
    that a test can check that no output, lock, log or cache holds it."""
    repo = copy_repo(tmp_path_factory.mktemp("reproduced") / "vovnet")
    env = {**ENV, "HF_TOKEN": FAKE_TOKEN, "HUGGINGFACE_HUB_TOKEN": FAKE_TOKEN}
    p = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return Reproduced(repo, p.stdout + p.stderr)


@contextlib.contextmanager
def private_sshd(d: Path, address: str = "127.0.0.1"):
    """An sshd of this test's own on `address` and a free port, with a generated host key and one client key:
    yields (port, client key). Skips, saying why, where openssh-server is missing (.ci/run installs it)."""
    import socket
    import time

    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin):
        pytest.skip("openssh-server is not installed (.ci/run installs it with apt-get)")
    d.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    with socket.socket() as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nPermitRootLogin yes\n"
        "StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex((address, port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {proc.stderr.read().decode()[-500:]}")
    try:
        yield port, d / "client"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
