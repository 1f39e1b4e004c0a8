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
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        VovnetError,
        match=r"not in the local Hugging Face cache.*`hf download --repo-type dataset "
        r"MMMU/MMMU --include 'README.md' --include '\*DEV\*' --include '\*dev\*'`",
    ):
        fetch("mmmu", ds_cfg("mmmu", source="hf:MMMU/MMMU"), tmp_path / "raw")


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
    src.rmdir()  # a server that pulled data/raw but has no copy of the source keeps the pulled folder
    assert fetch("llava", cfg, raw) is False and (raw / "llava.json").exists()
    assert "not on this machine" in caplog.text


@pytest.mark.slow
def test_repro_notices_a_changed_external_source(tmp_path):
    import shutil

    from conftest import ROOT, copy_repo, ran, reran, sh

    repo = copy_repo(tmp_path / "repo")
    external = tmp_path / "external"
    shutil.copytree(ROOT / "data" / "samples" / "mmbench_lite", external)
    params = (repo / "params.yaml").read_text().replace("source: data/samples/mmbench_lite", f"source: {external}")
    (repo / "params.yaml").write_text(params)
    assert {"download@mmbench_lite", "normalize@mmbench_lite"} <= ran(
        sh(repo, "dvc", "repro", "normalize@mmbench_lite")
    )
    assert reran(sh(repo, "dvc", "repro", "normalize@mmbench_lite")) == set()  # unchanged: nothing downstream
    tsv = external / "mmbench_lite.tsv"
    tsv.write_text(tsv.read_text().replace("What is the main colour", "Which is the main colour", 1))
    out = sh(repo, "dvc", "repro", "normalize@mmbench_lite")
    assert "normalize@mmbench_lite" in ran(out)
    assert (
        "Which is the main colour"
        in (repo / "data" / "processed" / "mmbench_lite" / "mmbench_lite_lite.jsonl").read_text()
    )


def test_normalize_takes_the_hashes_download_computed(tmp_path, monkeypatch):
    from conftest import mmb_row, write_tsv

    from vovnet.data import fingerprint
    from vovnet.data.normalize import normalize_dataset

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


def run_download(ws, name="mmbench", env=None):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "download.py"), "--dataset", name],
        cwd=ws,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_an_unchanged_source_is_a_stat_only_no_op_and_any_change_a_full_check(tmp_path):
    import os

    from conftest import ROOT, mmb_row, write_tsv

    src = tmp_path / "src"
    tsv = write_tsv(src / "MMBench_DEV_EN.tsv", [mmb_row(1), mmb_row(2)])
    params = (ROOT / "params.yaml").read_text().replace("source: data/samples/mmbench", f"source: {src}", 1)
    (tmp_path / "params.yaml").write_text(params)
    assert "fetched" in run_download(tmp_path)
    quick = "nothing changed since the last check"
    assert quick in run_download(tmp_path)
    st = tsv.stat()
    tsv.write_bytes(tsv.read_bytes().replace(b"Q?", b"R?", 1))  # same size, in place
    os.utime(tsv, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert "fetched" in run_download(tmp_path)
    assert b"R?" in (tmp_path / "data" / "raw" / "mmbench" / "MMBench_DEV_EN.tsv").read_bytes()
    assert quick in run_download(tmp_path)
    (src / "extra.txt").write_text("new file")  # a new file in the source
    assert "fetched" in run_download(tmp_path)
    os.utime(tmp_path / "params.yaml")  # params touched but equal: still a no-op
    assert quick in run_download(tmp_path)
    (tmp_path / "params.yaml").write_text(params.replace("max_grad_norm: 1.0", "max_grad_norm: 2.0"))
    out = run_download(tmp_path)  # any params edit: the full check, which finds the source unchanged
    assert quick not in out and "source unchanged" in out
    assert "source unchanged" in run_download(tmp_path, env={"VOVNET_IMAGE_ROOT": str(tmp_path)})
    (tmp_path / "data" / "raw" / "mmbench" / "MMBench_DEV_EN.tsv").unlink()  # the output damaged
    assert "fetched" in run_download(tmp_path)


def test_the_no_op_imports_neither_the_schema_nor_a_hub_client(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "data").mkdir()
    import shutil

    shutil.copytree(ROOT / "data" / "samples", tmp_path / "data" / "samples")
    run_download(tmp_path)
    p = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "stages" / "download.py"), "--dataset", "mmbench"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "nothing changed since the last check" in p.stdout
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "vovnet.data.noop_check" in imported
    assert not imported & {"pydantic", "ruamel.yaml", "huggingface_hub", "vovnet.config", "vovnet.data.download"}
