"""MMMU, TextVQA and HF-layout MMBench, from local parquet folders through the same load_dataset call."""

import json

import datasets
import pytest
from conftest import ds_cfg, jpeg_bytes, normalize_dataset
from helpers import LIMIT

from vovnet import VovnetError

IMG = datasets.Image()


def mmmu_rows(subject="Art"):
    base = {f"image_{k}": None for k in range(1, 8)}
    common = {"explanation": "", "img_type": "[]", "topic_difficulty": "Easy", "subfield": "x"}
    return (
        [
            {
                **base,
                **common,
                "id": "v_1",
                "question": "<image 1> Which? <image 2>",
                "options": "['a', 'b']",
                "answer": "B",
                "question_type": "multiple-choice",
                "image_1": {"bytes": jpeg_bytes(seed=1), "path": None},
                "image_2": {"bytes": jpeg_bytes(seed=2), "path": None},
            },
            {
                **base,
                **common,
                "id": "v_2",
                "question": "How many?",
                "options": "[]",
                "answer": "['3', 'three']",
                "question_type": "open",
            },
            {
                **base,
                **common,
                "id": "v_3",
                "question": "<image 9> which?",
                "options": "['a', 'b']",
                "answer": "A",
                "question_type": "multiple-choice",
                "image_1": {"bytes": jpeg_bytes(seed=3), "path": None},
            },
            {
                **base,
                **common,
                "id": "v_4",
                "question": "x?",
                "options": "__import__('os').system('touch /tmp/pwned_vovnet')",
                "answer": "A",
                "question_type": "multiple-choice",
            },
            {
                **base,
                **common,
                "id": "v_5",
                "question": "x?",
                "options": "not a list",
                "answer": "A",
                "question_type": "multiple-choice",
            },
        ]
        if subject == "Art"
        else [{**r, "id": f"{subject}_{r['id']}"} for r in mmmu_rows("Art")]
    )


def mmmu_features():
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "options": datasets.Value("string"),
            "explanation": datasets.Value("string"),
            **{f"image_{k}": IMG for k in range(1, 8)},
            "img_type": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "topic_difficulty": datasets.Value("string"),
            "question_type": datasets.Value("string"),
            "subfield": datasets.Value("string"),
        }
    )


@pytest.fixture
def mmmu_folder(tmp_path):
    folder = tmp_path / "mmmu"
    for subject in ("Art", "Math"):
        (folder / subject).mkdir(parents=True)
        datasets.Dataset.from_list(mmmu_rows(subject), features=mmmu_features()).to_parquet(
            str(folder / subject / "validation-00000-of-00001.parquet")
        )
    (folder / "README.md").write_text(
        "---\nconfigs:\n"
        + "".join(
            f"- config_name: {s}\n  data_files:\n  - split: validation\n    path: {s}/validation-*\n"
            for s in ("Art", "Math")
        )
        + "---\n"
    )
    return folder


def test_mmmu_literal_options_placeholders_and_rejects(tmp_path, mmmu_folder):
    out = tmp_path / "out"
    stats = normalize_dataset(
        "mmmu", ds_cfg("mmmu", splits=["validation"], subset=["Art"]), mmmu_folder, out, seed=0, max_image_pixels=LIMIT
    )
    recs = {
        r["meta"]["source_id"]: r for r in map(json.loads, (out / "mmmu_validation.jsonl").read_text().splitlines())
    }
    assert set(recs) == {"v_1", "v_2"}
    assert [im["sha256"] for im in recs["v_1"]["images"]] != [] and len(recs["v_1"]["images"]) == 2
    assert recs["v_1"]["answer"]["label"] == 1 and recs["v_1"]["meta"]["subject"] == "Art"
    assert recs["v_2"]["choices"] is None and recs["v_2"]["answer"]["all"] == ["3", "three"]
    rejects = {r["source_id"]: r for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert "image_9 is referenced but empty" in rejects["v_3"]["reason"]
    assert rejects["v_4"]["field"] == "options" and "literal list" in rejects["v_4"]["reason"]
    assert rejects["v_5"]["field"] == "options"
    import os

    assert not os.path.exists("/tmp/pwned_vovnet")  # the expression was never evaluated
    assert stats["rejects"] == 3


def test_mmmu_all_subjects_and_unknown_subject(tmp_path, mmmu_folder):
    stats = normalize_dataset(
        "mmmu",
        ds_cfg("mmmu", splits=["validation"], subset="all"),
        mmmu_folder,
        tmp_path / "o",
        seed=0,
        max_image_pixels=LIMIT,
    )
    assert stats["splits"]["validation"]["records"] == 4
    with pytest.raises(VovnetError, match="no config .Physics.; it has: Art, Math"):
        normalize_dataset(
            "mmmu",
            ds_cfg("mmmu", splits=["validation"], subset=["Physics"]),
            mmmu_folder,
            tmp_path / "o2",
            seed=0,
            max_image_pixels=LIMIT,
        )


def test_streaming_output_identical(tmp_path, mmmu_folder):
    for s in (False, True):
        normalize_dataset(
            "mmmu",
            ds_cfg("mmmu", splits=["validation"], subset="all", streaming=s),
            mmmu_folder,
            tmp_path / f"o{s}",
            seed=0,
            max_image_pixels=LIMIT,
        )
    for f in ("mmmu_validation.jsonl", "images.tar"):
        assert (tmp_path / "oFalse" / f).read_bytes() == (tmp_path / "oTrue" / f).read_bytes()


def textvqa_folder(tmp_path, rows):
    feats = datasets.Features(
        {
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": IMG,
            "answers": datasets.Sequence(datasets.Value("string")),
            "image_id": datasets.Value("string"),
            "ocr_tokens": datasets.Sequence(datasets.Value("string")),
        }
    )
    folder = tmp_path / "textvqa"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=feats).to_parquet(
        str(folder / "data" / "validation-00000-of-00001.parquet")
    )
    return folder


def test_textvqa_answers_and_short_answer_list(tmp_path):
    img = {"bytes": jpeg_bytes(), "path": None}
    rows = [
        {
            "question_id": 1,
            "question": "what?",
            "image": img,
            "answers": ["stop"] * 6 + ["go"] * 4,
            "image_id": "a",
            "ocr_tokens": ["stop"],
        },
        {"question_id": 2, "question": "what?", "image": img, "answers": ["x"] * 9, "image_id": "b", "ocr_tokens": []},
    ]
    folder = textvqa_folder(tmp_path, rows)
    stats = normalize_dataset(
        "textvqa", ds_cfg("textvqa", splits=["validation"]), folder, tmp_path / "o", seed=0, max_image_pixels=LIMIT
    )
    rec = json.loads((tmp_path / "o" / "textvqa_validation.jsonl").read_text())
    assert rec["answer"]["text"] == "stop" and len(rec["answer"]["all"]) == 10
    rej = json.loads((tmp_path / "o" / "rejects.jsonl").read_text())
    assert "expected 10 human answers, got 9" in rej["reason"]
    assert stats["images_stored"] == 1  # the shared image is stored once


def test_wrong_schema_parquet_folder_is_one_line_error(tmp_path):
    folder = tmp_path / "bad"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list([{"q": "x"}]).to_parquet(str(folder / "data" / "validation-00000-of-00001.parquet"))
    with pytest.raises(VovnetError, match=r"missing required column\(s\) question_id, question, image, answers"):
        normalize_dataset(
            "textvqa", ds_cfg("textvqa", splits=["validation"]), folder, tmp_path / "o", seed=0, max_image_pixels=LIMIT
        )
    assert not (tmp_path / "o").exists()


def test_config_needed_lists_available(tmp_path, mmmu_folder):
    with pytest.raises(VovnetError, match="needs a config name.*Art, Math"):
        normalize_dataset(
            "lite",
            ds_cfg("lite", "mmbench_lite", splits=["validation"]),
            mmmu_folder,
            tmp_path / "o",
            seed=0,
            max_image_pixels=LIMIT,
        )


def test_hf_mmbench_layout(tmp_path):
    rows = [
        {
            "index": 3,
            "question": "Q?",
            "hint": None,
            "A": "x",
            "B": "y",
            "C": "z",
            "D": None,
            "answer": "B",
            "category": "c",
            "image": {"bytes": jpeg_bytes(), "path": None},
            "source": "s",
            "L2-category": "l2",
            "comment": None,
            "split": "dev",
        }
    ]
    feats = datasets.Features(
        {
            "index": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "hint": datasets.Value("string"),
            **{k: datasets.Value("string") for k in "ABCD"},
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
            "image": IMG,
            "source": datasets.Value("string"),
            "L2-category": datasets.Value("string"),
            "comment": datasets.Value("string"),
            "split": datasets.Value("string"),
        }
    )
    folder = tmp_path / "mmb"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=feats).to_parquet(str(folder / "data" / "dev-00000-of-00001.parquet"))
    normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), folder, tmp_path / "o", seed=0, max_image_pixels=LIMIT
    )
    rec = json.loads((tmp_path / "o" / "mmbench_dev.jsonl").read_text())
    assert rec["choices"] == ["x", "y", "z"] and rec["answer"]["label"] == 1 and rec["meta"]["l2_category"] == "l2"
