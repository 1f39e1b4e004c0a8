"""Offline-server round trips: run the sample pipeline, `dvc push` to a remote, clone, `dvc pull`,
nothing reruns; the pulled clone trains offline. Remotes: local folder, S3 (moto on loopback), SSH
(an sshd on loopback started here)."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import ENV, private_sshd, ran, sh, up_to_date

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin(reproduced, tmp_path_factory):
    repo = reproduced.copy(tmp_path_factory.mktemp("origin") / "vovnet")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "--allow-empty", "-qm", "reproduced")
    return repo


def round_trip(origin: Path, clone_dir: Path, url: str, local_config: dict, env: dict | None = None) -> Path:
    env = {**ENV, **(env or {})}

    def run(cwd, *cmd):
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, f"{' '.join(cmd)}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        return p.stdout + p.stderr

    def configure(repo):
        run(repo, "dvc", "remote", "add", "--local", "-f", "-d", "store", url)
        for k, v in local_config.items():
            run(repo, "dvc", "remote", "modify", "--local", "store", k, v)

    configure(origin)
    run(origin, "dvc", "push")
    run(origin, "dvc", "push", "--run-cache")
    run(clone_dir.parent, "git", "clone", "-q", str(origin), str(clone_dir))
    configure(clone_dir)
    run(clone_dir, "dvc", "pull")
    assert up_to_date(run(clone_dir, "dvc", "status"))
    assert ran(run(clone_dir, "dvc", "repro")) == set()
    assert (clone_dir / "models" / "vovnet" / "head.safetensors").exists()
    return clone_dir


def test_local_remote_round_trip_and_offline_experiment(origin, tmp_path):
    clone = round_trip(origin, tmp_path / "server", str(tmp_path / "remote"), {})
    # The server: no hub, no datasets network; an experiment reruns train and what reads the model only.
    out = sh(clone, "dvc", "exp", "run", "-S", "train.lr=1e-5")
    stages = ran(out)
    downstream = {f"evaluate@{k}" for k in ("mmbench", "mmbench_test", "mmmu", "textvqa")} | {"plot_training"}
    assert "train" in stages and {s for s in stages if s != "train"} <= downstream
    assert not (clone / ".dvc" / "config").read_text().count(str(tmp_path / "remote"))  # kept in config.local


def test_s3_remote_round_trip(origin, tmp_path):
    pytest.importorskip("dvc_s3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            region_name="us-east-1",
        ).create_bucket(Bucket="vovnet")
        round_trip(origin, tmp_path / "server", "s3://vovnet/dvc", {"endpointurl": endpoint}, env=creds)
    finally:
        server.stop()


@pytest.fixture
def sshd(tmp_path):
    with private_sshd(tmp_path / "ssh") as server:
        yield server


def test_ssh_remote_round_trip(origin, tmp_path, sshd):
    pytest.importorskip("dvc_ssh")
    port, key = sshd
    user = os.environ.get("USER") or "root"
    round_trip(
        origin, tmp_path / "server", f"ssh://{user}@127.0.0.1:{port}{tmp_path / 'remote'}", {"keyfile": str(key)}
    )
