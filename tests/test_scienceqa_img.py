"""ScienceQA-IMG (lmms-lab/ScienceQA, config ScienceQA-IMG) as `download` leaves it: a README listing the
ScienceQA-FULL and ScienceQA-IMG configs, with only ScienceQA-IMG/test-* present. Columns and types as the
card gives them (`choices` a sequence of text, `answer` an int8 index)."""

import json

import datasets
import pytest
from conftest import ds_cfg, hf_patterns, jpeg_bytes, normalize_dataset
from helpers import LIMIT

from vovnet import VovnetError

V = datasets.Value
CARD = "\n".join(
    ["---", "configs:"]
    + [
        line
        for cfg in ("ScienceQA-FULL", "ScienceQA-IMG")
        for line in (
            f"- config_name: {cfg}",
            "  data_files:",
            "  - split: validation",
            f"    path: {cfg}/validation-*",
            "  - split: test",
            f"    path: {cfg}/test-*",
        )
    ]
    + ["---", "# ScienceQA", ""]
)
FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "question": V("string"),
        "choices": datasets.Sequence(V("string")),
        "answer": V("int8"),
        "hint": V("string"),
        **{k: V("string") for k in ("task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")},
    }
)


def row(i, choices=("weather", "climate"), answer=0, image=True, hint=""):
    return {
        "image": {"bytes": jpeg_bytes(seed=i), "path": None} if image else None,
        "question": f"Does this passage describe the weather or the climate? ({i})",
        "choices": list(choices),
        "answer": answer,
        "hint": hint,
        "task": "closed choice",
        "grade": "grade5",
        "subject": "natural science",
        "topic": "earth-science",
        "category": "Weather and climate",
        "skill": "Weather and climate around the world",
        "lecture": "",
        "solution": "",
    }


def snapshot(tmp_path, rows):
    folder = tmp_path / "scienceqa"
    (folder / "ScienceQA-IMG").mkdir(parents=True)
    (folder / "README.md").write_text(CARD)
    datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(
        str(folder / "ScienceQA-IMG" / "test-00000-of-00001.parquet")
    )
    return folder


def test_img_config_test_files_only_and_rejects(tmp_path):
    rows = [
        row(0, hint="Tom saw rain today."),
        row(1, choices=("A1", "B2", "C3", "D4", "E5"), answer=4),
        row(2, answer=2),
        row(3, choices=("only",)),
        row(4, image=False),
        row(5, choices=("x", "")),
        row(6, answer=1),
    ]
    folder = snapshot(tmp_path, rows)
    cfg = ds_cfg("scienceqa_img", splits=["test"], subset="ScienceQA-IMG")
    assert hf_patterns(folder, cfg) == ["ScienceQA-IMG/test-*"]  # neither ScienceQA-FULL nor validation
    out = tmp_path / "out"
    stats = normalize_dataset("scienceqa_img", cfg, folder, out, seed=0, max_image_pixels=LIMIT)
    split = stats["splits"]["test"]
    assert (split["rows"], split["records"], split["rejects"]) == (7, 3, 4)
    recs = {
        r["meta"]["source_id"]: r for r in map(json.loads, (out / "scienceqa_img_test.jsonl").read_text().splitlines())
    }
    assert set(recs) == {"row0", "row1", "row6"}
    assert recs["row0"]["hint"] == "Tom saw rain today." and recs["row6"]["hint"] is None
    assert recs["row1"]["choices"] == ["A1", "B2", "C3", "D4", "E5"] and recs["row1"]["answer"]["text"] == "E"
    assert recs["row6"]["answer"]["label"] == 1 and recs["row0"]["meta"]["subject"] == "natural science"
    rejects = {r["source_id"]: r for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rejects["row2"]["field"] == "answer" and "outside the 2 options" in rejects["row2"]["reason"]
    assert rejects["row3"]["field"] == "choices" and rejects["row4"]["field"] == "image"
    assert rejects["row5"]["field"] == "choices[1]"


def test_validation_named_but_absent_is_one_line(tmp_path):
    folder = snapshot(tmp_path, [row(0)])
    with pytest.raises(VovnetError, match=r"no files match ScienceQA-IMG/validation-\* \(config 'ScienceQA-IMG'"):
        normalize_dataset(
            "scienceqa_img",
            ds_cfg("scienceqa_img", splits=["validation"], subset="ScienceQA-IMG"),
            folder,
            tmp_path / "o",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o").exists()
