import hashlib
import http.server
import threading

import pytest
from conftest import ds_cfg

from vovnet import VovnetError
from vovnet.data.download import download_url, fetch

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    drops_left = 1
    requests: list = []

    def do_GET(self):
        rng = self.headers.get("Range")
        FlakyHandler.requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = PAYLOAD[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if FlakyHandler.drops_left > 0:
            FlakyHandler.drops_left -= 1
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # drop mid-file
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FlakyHandler.drops_left, FlakyHandler.requests = 1, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/MMBench_DEV_EN.tsv"
    srv.shutdown()


def test_interrupted_download_resumes_and_verifies_md5(tmp_path, server):
    dest = tmp_path / "f.tsv"
    download_url(server, dest, retries=3, backoff=0.01, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert FlakyHandler.requests[0] is None and FlakyHandler.requests[1].startswith("bytes=")  # resumed with Range


def test_md5_mismatch_never_commits(tmp_path, server):
    with pytest.raises(VovnetError, match="does not match the published"):
        fetch("mmbench", ds_cfg("mmbench", source=server, md5="0" * 32), tmp_path / "raw", retries=3, backoff=0.01)
    assert not (tmp_path / "raw").exists()


def test_local_sources_and_bad_schemes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.tsv").write_text("x")
    fetch("mmbench", ds_cfg("mmbench", source=str(src)), tmp_path / "raw")
    assert (tmp_path / "raw" / "a.tsv").read_text() == "x"
    fetch("mmbench", ds_cfg("mmbench", source=f"file://{src / 'a.tsv'}"), tmp_path / "raw2")
    assert (tmp_path / "raw2" / "a.tsv").exists()
    with pytest.raises(VovnetError, match="only http, https, file, hf"):
        fetch("mmbench", ds_cfg("mmbench", source="ftp://host/x.tsv"), tmp_path / "raw3")
    with pytest.raises(VovnetError, match="does not exist"):
        fetch("mmbench", ds_cfg("mmbench", source=str(tmp_path / "missing")), tmp_path / "raw4")


def test_hf_source_offline_without_cache_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(
        VovnetError,
        match=r"^datasets.mmmu: hf:MMMU/MMMU is not in the local Hugging Face cache .*"
        r"`hf download --repo-type dataset MMMU/MMMU README.md` first",
    ) as err:
        fetch("mmmu", ds_cfg("mmmu", source="hf:MMMU/MMMU"), tmp_path / "raw")
    assert "\n" not in str(err.value)


def test_local_source_and_image_root_fingerprints(tmp_path, caplog):
    import os

    src, imgs, raw = tmp_path / "src", tmp_path / "imgs", tmp_path / "data" / "raw" / "llava"
    src.mkdir()
    imgs.mkdir()
    (src / "llava.json").write_text("[]")
    (imgs / "a.jpg").write_bytes(b"jpeg-a")
    cfg = ds_cfg("llava", source=str(src), image_root=str(imgs), splits=["train"])
    assert fetch("llava", cfg, raw) is True
    record = (raw / "SOURCE.json").read_text()
    assert '"sha256":"' + hashlib.sha256(b"jpeg-a").hexdigest() in record.replace(" ", "")
    stamp = (raw / "SOURCE.json").stat().st_mtime_ns
    assert fetch("llava", cfg, raw) is False  # unchanged: nothing rewritten
    os.utime(src / "llava.json", ns=(1, 1))  # touched, same content: re-hashed, still unchanged
    assert fetch("llava", cfg, raw) is False and (raw / "SOURCE.json").stat().st_mtime_ns == stamp
    (src / "llava.json").write_text('[{"id": 1}]')
    assert fetch("llava", cfg, raw) is True and (raw / "llava.json").read_text() == '[{"id": 1}]'
    (imgs / "a.jpg").write_bytes(b"jpeg-b")  # an image root outside the raw folder is a source too
    assert fetch("llava", cfg, raw) is True
    assert hashlib.sha256(b"jpeg-b").hexdigest() in (raw / "SOURCE.json").read_text()
    (src / "llava.json").unlink()
    src.rmdir()  # a server that pulled data/raw (dvc.lock holds these params) but has no copy of the source
    assert fetch("llava", cfg, raw, locked=True) is False and (raw / "llava.json").exists()
    assert "not on this machine; params match dvc.lock: keeping" in caplog.text
    with pytest.raises(VovnetError, match=r"^datasets.llava.source: .*/src does not exist \(.* is kept only while"):
        fetch("llava", cfg, raw, locked=False)  # params changed since the lock: never the old data
    assert (raw / "llava.json").exists()


def test_normalize_takes_the_hashes_download_computed(tmp_path, monkeypatch):
    from conftest import mmb_row, normalize_dataset, write_tsv

    import vovnet.data.normalize  # noqa: F401  (before the patch below: it hashes its own outputs by name)
    from vovnet.data import fingerprint

    tsv = write_tsv(tmp_path / "src" / "MMBench_DEV_EN.tsv", [mmb_row(1), mmb_row(2)])
    raw = tmp_path / "data" / "raw" / "mmbench"
    cfg = ds_cfg("mmbench", source=str(tsv.parent), splits=["dev"])
    fetch("mmbench", cfg, raw)

    def rehash(path):
        raise AssertionError(f"{path} hashed twice")

    monkeypatch.setattr(fingerprint, "sha256_file", rehash)
    stats = normalize_dataset("mmbench", cfg, raw, tmp_path / "out", seed=0, max_image_pixels=89_478_485)
    assert stats["splits"]["dev"]["source_files"] == [
        {
            "name": "MMBench_DEV_EN.tsv",
            "bytes": tsv.stat().st_size,
            "sha256": hashlib.sha256(tsv.read_bytes()).hexdigest(),
        }
    ]


def run_stage(ws, name="textvqa", check=True):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "download.py"), "--dataset", name],
        cwd=ws,
        capture_output=True,
        text=True,
        env={**os.environ, "VOVNET_LOG_LEVEL": "WARNING"},
        timeout=120,
    )
    assert (p.returncode == 0) == check, p.stderr
    return p.stdout + p.stderr


def lock_for(ws, name, entry):
    """dvc.lock as `dvc repro` writes it: the stage's params section holds the entry it ran with."""
    import json

    stage = {
        "cmd": f"python stages/download.py --dataset {name}",
        "params": {"params.yaml": {f"datasets.{name}": entry}},
    }
    (ws / "dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": {f"download@{name}": stage}}))  # JSON is YAML


def test_a_source_typo_fails_in_one_line_and_a_missing_source_with_locked_params_keeps_the_data(tmp_path):
    import shutil

    from conftest import ROOT

    shutil.copytree(ROOT / "data" / "samples" / "textvqa", tmp_path / "data" / "samples" / "textvqa")
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params)
    assert "fetched data/samples/textvqa" in run_stage(tmp_path)
    lock_for(tmp_path, "textvqa", {"adapter": "textvqa", "source": "data/samples/textvqa"})
    raw = tmp_path / "data" / "raw" / "textvqa"
    before = {p: p.read_bytes() for p in raw.rglob("*") if p.is_file()}
    typo = params.replace("source: data/samples/textvqa", "source: data/samples/textvqa_typo")
    (tmp_path / "params.yaml").write_text(typo)
    out = run_stage(tmp_path, check=False)
    errors = [line for line in out.splitlines() if line.strip()]
    assert errors == [
        "error: datasets.textvqa.source: data/samples/textvqa_typo does not exist "
        "(data/raw/textvqa is kept only while the entry matches dvc.lock's)"
    ]
    # the pulled server: the entry as dvc.lock records it, the source folder absent, the pulled data kept
    (tmp_path / "params.yaml").write_text(params)
    shutil.rmtree(tmp_path / "data" / "samples" / "textvqa")
    out = run_stage(tmp_path)
    assert "data/samples/textvqa is not on this machine; params match dvc.lock: keeping data/raw/textvqa" in out
    assert {p: p.read_bytes() for p in raw.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_download_stages_are_clean_after_a_repro_and_rerun_on_an_in_place_sample_edit(tmp_path):
    from conftest import copy_repo, ran, sh

    repo = copy_repo(tmp_path / "repo")
    targets = ["normalize@mmbench_lite", "normalize@textvqa"]
    assert {"download@mmbench_lite", "download@textvqa"} <= ran(sh(repo, "dvc", "repro", *targets))
    assert "up to date" in sh(repo, "dvc", "status", *targets)
    noop = sh(repo, "dvc", "repro", *targets)
    assert ran(noop) == set() and "Stage 'download@textvqa' didn't change, skipping" in noop
    tsv = repo / "data" / "samples" / "mmbench_lite" / "mmbench_lite.tsv"
    tsv.write_text(tsv.read_text().replace("What is the main colour", "Which is the main colour", 1))
    edited = ran(sh(repo, "dvc", "repro", *targets))
    assert {"download@mmbench_lite", "normalize@mmbench_lite"} <= edited and "normalize@textvqa" not in edited
    lite = repo / "data" / "processed" / "mmbench_lite" / "mmbench_lite_lite.jsonl"
    assert "Which is the main colour" in lite.read_text()
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(
        params.replace("source: data/samples/textvqa", "source: data/samples/textvqa_typo")
    )
    failed = sh(repo, "dvc", "repro", "download@textvqa", check=False)
    assert "error: datasets.textvqa.source: data/samples/textvqa_typo does not exist" in failed
    assert "Traceback" not in failed
