"""Error messages and doctor lines name the remedy that fits the case."""

import subprocess
import sys

import pytest
from conftest import ROOT
from PIL import Image

from vovnet import VovnetError
from vovnet.model.loading import check_model_dir


def test_missing_tiny_model_says_dvc_repro_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VovnetError, match=r"models/tiny-qwen3-vl not found; build it with `dvc repro model`"):
        check_model_dir("models/tiny-qwen3-vl")


@pytest.mark.parametrize(
    "path,repo",
    [
        ("models/qwen3-vl-8b-instruct", "Qwen/Qwen3-VL-8B-Instruct"),
        ("models/qwen3-vl-8b-thinking", "Qwen/Qwen3-VL-8B-Thinking"),
        ("models/my-finetune", "<hub id>"),
    ],
)
def test_missing_hub_model_says_download_model_and_dvc_add(tmp_path, monkeypatch, path, repo):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VovnetError) as err:
        check_model_dir(path)
    msg = str(err.value)
    assert f"`python -m vovnet download-model {repo} --out {path}`, then `dvc add {path}`" in msg
    assert "dvc repro model" not in msg and "\n" not in msg


def test_incomplete_model_dir_names_the_missing_files_and_remedy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "qwen3-vl-8b-instruct").mkdir(parents=True)
    (tmp_path / "models" / "qwen3-vl-8b-instruct" / "config.json").write_text("{}")
    with pytest.raises(VovnetError, match=r"incomplete: missing weights .*download-model Qwen/Qwen3-VL-8B-Instruct"):
        check_model_dir("models/qwen3-vl-8b-instruct")


def test_doctor_checks_dvc_no_analytics(tmp_path, monkeypatch):
    from vovnet.doctor import _analytics

    monkeypatch.chdir(tmp_path)  # no .dvc/config here: only the variable counts
    monkeypatch.delenv("DVC_NO_ANALYTICS", raising=False)
    status, msg = _analytics()
    assert status == "warn" and "export DVC_NO_ANALYTICS=1" in msg
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    assert _analytics() == ("ok", "DVC_NO_ANALYTICS=1")


def test_export_images_names_an_unknown_split_and_lists_the_known(tmp_path):
    root = tmp_path / "processed"
    (root / "mmbench").mkdir(parents=True)
    for split in ("dev", "test"):
        (root / "mmbench" / f"mmbench_{split}.jsonl").write_text("")
    (root / "mmbench" / "rejects.jsonl").write_text("")
    cmd = [sys.executable, "-m", "vovnet.data", "export-images", "--root", str(root), "--out", str(tmp_path / "o")]
    p = subprocess.run(cmd + ["--dataset", "mmbench", "--split", "nosuch"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: dataset 'mmbench' has no split 'nosuch' (have: dev, test)"
    p = subprocess.run(cmd + ["--dataset", "mmbnch", "--split", "dev"], cwd=ROOT, capture_output=True, text=True)
    assert (
        p.returncode == 2
        and p.stderr.startswith("error: no processed dataset 'mmbnch'")
        and "(have: mmbench;" in p.stderr
    )
    assert not (tmp_path / "o").exists()


def test_max_length_advice_fits_the_action(tiny_model_dir, params):
    from vovnet.model.encoding import Encoder
    from vovnet.model.loading import load_processor

    processor = load_processor(str(tiny_model_dir), params["model"])
    enc = Encoder(processor, params["vision_budget"], max_length=1)
    rec = {
        "id": "r1",
        "question": "What colour?",
        "hint": None,
        "choices": ["red", "blue"],
        "answer": {"label": 0, "text": "red", "all": ["red"]},
    }
    with pytest.raises(
        VovnetError, match=r"with no vision exceed train.max_length 1; raise it \(this is the text alone\)$"
    ):
        enc.encode(rec, [], "no")
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    with pytest.raises(
        VovnetError, match=r"with coarse vision exceed .*raise it or lower vision_budget.coarse.max_pixels$"
    ):
        enc.encode(rec, [image], "coarse")


def test_doctor_gives_the_hub_remedy_for_the_paper_model(tmp_path, monkeypatch, capsys):
    from vovnet.doctor import run_doctor

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("model:\n  name: models/qwen3-vl-8b-instruct\n")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    assert run_doctor("params.yaml") == 1
    lines = capsys.readouterr().out.splitlines()
    model = [x for x in lines if x.startswith("[fail] model")]
    assert len(model) == 1 and "download-model Qwen/Qwen3-VL-8B-Instruct" in model[0]
    assert "dvc add models/qwen3-vl-8b-instruct" in model[0] and "dvc repro model" not in model[0]
    assert "[ok] DVC_NO_ANALYTICS=1" in lines
