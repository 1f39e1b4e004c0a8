"""Stage 2 reads its own file (train.policy_file), which must share no item with stage 1's."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from ruamel.yaml import YAML

from vovnet import VovnetError
from vovnet.training.stage_data import stage_records


def rec(i, question="What is shown?", sha="a", dataset="llava", **meta):
    return {
        "id": f"{dataset}-{i}",
        "dataset": dataset,
        "split": "dev",
        "question": question,
        "hint": None,
        "choices": None,
        "answer": {"label": None, "text": "x", "all": ["x"]},
        "images": [{"sha256": sha * 64}],
        "meta": meta,
    }


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def cfg(tmp_path, first, second):
    return {"train_file": write(tmp_path / "s1.jsonl", first), "policy_file": write(tmp_path / "s2.jsonl", second)}


def test_disjoint_files_feed_their_own_stage(tmp_path):
    a, b = [rec(1), rec(2, sha="b")], [rec(3, question="Another?", sha="c")]
    first, second = stage_records(cfg(tmp_path, a, b))
    assert [r["id"] for r in first] == ["llava-1", "llava-2"] and [r["id"] for r in second] == ["llava-3"]


@pytest.mark.parametrize(
    "clash",
    [
        rec(1, question="Different?", sha="z"),  # same id
        rec(9, question="  what is SHOWN? ", sha="a"),  # same image + question (normalised)
        rec(9, question="Rotated options?", sha="z", dataset="mmbench_lite", family="mmbench", index=7),  # source index
    ],
)
def test_overlap_by_any_key_fails_with_one_line(tmp_path, clash):
    # a circular copy (index 1000007) of MMBench dev item 7 in stage 1
    first = [rec(1), rec(2, question="Other?", sha="m", dataset="mmbench", family="mmbench", index=1000007)]
    with pytest.raises(VovnetError) as err:
        stage_records(cfg(tmp_path, first, [rec(5, question="Fine?", sha="q"), clash]))
    msg = str(err.value)
    assert "\n" not in msg and "s2.jsonl: 1 of 2 stage-2 records overlap" in msg and clash["id"] in msg


def test_empty_policy_file_is_one_line(tmp_path):
    with pytest.raises(VovnetError, match=r"s2.jsonl: no training records \(train.policy_file\)"):
        stage_records(cfg(tmp_path, [rec(1)], []))


def test_train_stage_refuses_stage2_on_stage1_data(workspace):
    y = YAML()
    d = y.load((workspace / "params.yaml").read_text())
    d["train"]["policy_file"] = d["train"]["train_file"]
    d["train"]["output_dir"] = "models/vovnet_same_file"  # the shared workspace may hold another test's model
    p = workspace / "params_same_file.yaml"
    with open(p, "w") as fh:
        y.dump(d, fh)
    out = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(p)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stage-2 records overlap stage 1's" in errors[0]
    assert not (workspace / "models" / "vovnet_same_file").exists()
