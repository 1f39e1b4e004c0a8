"""Resumable generation: a killed evaluate@ reruns only what its log lacks, with byte-identical outputs; the
log drops a torn or corrupt tail (counted), names logs of other settings, and survives a failed write; large
model files are hashed once per size, mtime and inode."""

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from vovnet.config import load_params
from vovnet.evaluation.generation_log import GenerationLog, read_log
from vovnet.io_utils import dumps

OUTPUTS = ("predictions.jsonl", "submission.tsv", "report.json", "metrics.json", "pareto.json")


def test_torn_and_corrupt_lines_are_dropped_and_counted(tmp_path, caplog):
    settings = {"model": "m", "kind": "answers"}
    glog = GenerationLog(tmp_path, settings, "rank-0", "t")
    entropies = GenerationLog(tmp_path, {**settings, "kind": "entropy"}, "rank-0", "t")  # another generation
    calls = []
    for k in range(3):
        glog.run(f"k{k}", [str(k)], lambda k=k: calls.append(k) or [{"x": k / 3}])
    path = glog.path
    with open(path, "ab") as fh:
        fh.write(b'{"sha256": "abc", "entry": {"key"')  # a write cut short by a kill
    entries, dropped, _ = read_log(path)
    assert [e["key"] for e in entries] == ["k0", "k1", "k2"] and dropped == 1
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"x"', b'"y"')  # a corrupt middle line: used up to it
    path.write_bytes(b"\n".join(lines))
    with caplog.at_level(logging.INFO, "vovnet.evaluate"):
        again = GenerationLog(tmp_path, settings, "rank-0", "t")
        GenerationLog(tmp_path, {**settings, "model": "other"}, "rank-0", "t")
    assert f"{path}: used up to a torn or corrupt line, 3 line(s) dropped" in caplog.text
    assert set(again.done) == {"k0"}
    assert read_log(path)[1] == 0  # the writer's own file was cut back to its last whole entry
    assert again.run("k0", ["0"], lambda: pytest.fail("k0 is logged")) == [{"x": 0.0}]
    assert again.run("k1", ["1"], lambda: [{"x": 1 / 3}]) == [{"x": 1 / 3}]
    assert again.counts() == (1, 1) and calls == [0, 1, 2]
    # the same kind under another model is named; another kind in the same root is another generation
    assert f"ignoring generation logs of other settings in {tmp_path}: {again.folder.name} (model" in caplog.text
    assert entropies.folder.name not in caplog.text


def test_a_baseline_variant_s_logs_under_other_settings_are_named(tmp_path, caplog):
    variant = {"curve": "generated", "budget": (256, 1024), "rule": None}  # a tuple, read back as a list
    old = GenerationLog(tmp_path, {"model": "old", "kind": "baseline", "variant": variant}, "rank-0", "t")
    GenerationLog(tmp_path, {"model": "old", "kind": "baseline", "variant": {**variant, "budget": (64, 64)}}, "r", "t")
    with caplog.at_level(logging.INFO, "vovnet.evaluate"):
        GenerationLog(tmp_path, {"model": "new", "kind": "baseline", "variant": variant}, "rank-0", "t")
    assert f"ignoring generation logs of other settings in {tmp_path}: {old.folder.name} (model" in caplog.text


def test_large_model_files_are_hashed_once_per_size_mtime_and_inode(tmp_path, monkeypatch):
    from vovnet.evaluation import generation_log as gl

    monkeypatch.setattr(gl, "CACHED_FROM", 1024)  # the threshold in bytes, not the behaviour, is scaled down
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    weights = model / "model.safetensors"
    weights.write_bytes(b"a" * 4096)
    cache: dict = {}
    first = gl.files_digest(model, cache)
    assert first == gl.files_digest(model, {})  # the cache never changes a digest
    assert len(cache) == 1 and next(iter(cache)).startswith(str(weights.resolve()))  # only the large file
    key = next(iter(cache))
    cache[key] = "0" * 64
    assert gl.files_digest(model, cache) != first  # read from the cache, not the file
    weights.write_bytes(b"b" * 4096)  # same size, new content and mtime
    os.utime(weights, ns=(1, 1))
    changed = gl.files_digest(model, cache)
    assert changed == gl.files_digest(model, {}) != first and len(cache) == 2


def test_generation_settings_keep_the_digest_cache_in_the_log_folder(tmp_path, monkeypatch):
    from vovnet.evaluation import generation_log as gl

    monkeypatch.setattr(gl, "CACHED_FROM", 1024)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.safetensors").write_bytes(b"w" * 2048)
    params = load_params(ROOT / "params.yaml")
    ecfg = {**params["evaluation"], "model_dir": str(tmp_path / "m"), "generation_log": str(tmp_path / "logs")}
    settings = gl.generation_settings(ecfg, params["model"], params["vision_budget"], "hub/name", "cpu")
    saved = json.loads((tmp_path / "logs" / gl.DIGESTS_FILE).read_text())
    assert len(saved) == 1
    (tmp_path / "logs" / gl.DIGESTS_FILE).write_text('{"torn')  # a torn cache: hashed again, same settings
    assert gl.generation_settings(ecfg, params["model"], params["vision_budget"], "hub/name", "cpu") == settings


def fill_up(folder: str) -> None:  # in a child process: a file-size limit stands in for a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    glog = GenerationLog(Path(folder), {"kind": "answers"}, "rank-0", "t")
    glog.run("small", ["a"], lambda: ["x"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (glog.path.stat().st_size + 100, resource.RLIM_INFINITY))
    glog.run("big", ["b"], lambda: ["y" * 10_000])


def test_a_failed_write_is_one_line_and_the_log_stays_valid(tmp_path):
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_eval_generation_log as t; "
    code += f"t.fill_up({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot append to the generation log" in last and "valid up to its last whole entry" in last
    (path,) = tmp_path.glob("*/rank-0.jsonl")
    entries, dropped, _ = read_log(path)
    assert [e["key"] for e in entries] == ["small"] and dropped == 0


@pytest.fixture(scope="module")
def trained(workspace):
    """The tiny VoVNet saved where evaluation reads it."""
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        params = load_params("params.yaml")
        from vovnet.model.factory import build_vovnet, save_vovnet

        torch.manual_seed(0)
        model, processor = build_vovnet(params)
        save_vovnet(model, processor, params, "models/vovnet")
    finally:
        os.chdir(cwd)
    return workspace


def evaluate(ws: Path, log_dir: str, out: str, processes: int = 1) -> subprocess.Popen:
    params = load_params(ws / "params.yaml")
    params["evaluation"].update(batch_size=1, max_samples=4, generation_log=log_dir)
    params["launch"]["processes"] = processes
    (ws / f"{out}.params.yaml").write_text(dumps(params))
    cmd = [sys.executable, "-m", "vovnet.launch", str(ROOT / "stages/evaluate.py")]
    cmd += ["--set", "mmbench", "--params", f"{out}.params.yaml", "--out", out]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VOVNET_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def logged_lines(folder: Path) -> int:
    return sum(len(read_log(f)[0]) for f in folder.glob("*/*/rank-*.jsonl"))


def kill_when(proc: subprocess.Popen, folder: Path, lines: int) -> None:
    """SIGKILL the launch's whole process group once `lines` batches are logged (0: as soon as it starts)."""
    deadline = time.monotonic() + 300
    while logged_lines(folder) < lines and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers
    proc.wait()


@pytest.mark.slow  # over 60 s each: 94 s with 1 process on the shared 2-CPU machine; 2 processes take longer
@pytest.mark.parametrize("processes", [1, 2])
def test_killed_evaluation_resumes_byte_identical_without_generating_twice(trained, processes):
    ws = trained
    full = evaluate(ws, f"logs-full-{processes}", f"eval-full-{processes}", processes)
    assert full.wait() == 0, full.stdout.read()
    batches = logged_lines(ws / f"logs-full-{processes}")
    assert batches > 4
    log_dir = ws / f"logs-killed-{processes}"
    for point in (0, 2, batches // 2):
        run = evaluate(ws, log_dir.name, f"eval-killed-{processes}", processes)
        kill_when(run, log_dir, point)
        assert logged_lines(log_dir) < batches
    # in the scoring step: every batch logged, the outputs (a plot among them, a second's work) not yet written
    run = evaluate(ws, log_dir.name, f"eval-killed-{processes}", processes)
    kill_when(run, log_dir, batches)
    assert logged_lines(log_dir) == batches and not (ws / f"eval-killed-{processes}" / "metrics.json").exists()
    rerun = evaluate(ws, log_dir.name, f"eval-killed-{processes}", processes)
    assert rerun.wait() == 0, rerun.stdout.read()
    assert logged_lines(log_dir) == batches  # every batch generated once, over all the runs
    again = evaluate(ws, log_dir.name, f"eval-again-{processes}", processes)  # all logged: generates nothing
    out = again.stdout.read()
    assert again.wait() == 0 and logged_lines(log_dir) == batches, out
    assert "generated 0 batch(es)" in out
    for name in OUTPUTS:
        ref = (ws / f"eval-full-{processes}" / name).read_bytes()
        assert (ws / f"eval-killed-{processes}" / name).read_bytes() == ref, name
        assert (ws / f"eval-again-{processes}" / name).read_bytes() == ref, name
    assert json.loads((ws / f"eval-full-{processes}" / "metrics.json").read_text())["questions"] == 4
