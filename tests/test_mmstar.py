"""MMStar (Lin-Chen/MMStar): the hub's layout as `download` leaves it (README `configs:` naming the root
mmstar.parquet as config `val`, split `val`; the repo's 59.6 MB MMStar.tsv not fetched), options inline in
`question`, `meta_info` a {source, split, image_path} struct. Built with `datasets` in those column types."""

import json

import datasets
import pytest
from conftest import b64, ds_cfg, hf_patterns, jpeg_bytes, mmb_row, normalize_dataset, write_tsv
from helpers import LIMIT

from vovnet import VovnetError
from vovnet.data.overlap import find_overlap
from vovnet.data.records import Reject
from vovnet.tasks.mmstar.adapter import split_options

V = datasets.Value
CARD = """---
configs:
- config_name: val
  data_files:
  - split: val
    path: mmstar.parquet
---
# MMStar
"""
FEATURES = datasets.Features(
    {
        "index": V("int64"),
        "question": V("string"),
        "image": datasets.Image(),
        "answer": V("string"),
        "category": V("string"),
        "l2_category": V("string"),
        "meta_info": {"source": V("string"), "split": V("string"), "image_path": V("string")},
    }
)
QUESTION = (
    "Which option describe the object relationship in the image correctly?\nOptions: A: The suitcase is on "
    "the book., B: The suitcase is beneath the cat., C: The suitcase is beneath the bed., "
    "D: The suitcase is beneath the book."
)


def row(i, question=QUESTION, answer="B", image=True, source="MMBench"):
    return {
        "index": i,
        "question": question,
        "answer": answer,
        "image": {"bytes": jpeg_bytes(seed=i), "path": None} if image else None,
        "category": "instance reasoning",
        "l2_category": "cross-instance relation reasoning",
        "meta_info": {"source": source, "split": "val", "image_path": f"images/{i}.jpg"},
    }


def snapshot(tmp_path, rows):
    folder = tmp_path / "mmstar"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(str(folder / "mmstar.parquet"))
    return folder


def read(out, split="val"):
    return [json.loads(x) for x in (out / f"mmstar_{split}.jsonl").read_text().splitlines()]


def test_partial_snapshot_options_meta_and_rejects(tmp_path):
    rows = [
        row(0),
        row(1, answer="D"),
        row(2, answer="E"),
        row(3, question="What is shown? A: cat, B: dog"),
        row(4, image=False),
        row(5, question="Which? Options: A: yes, B: no", answer="b"),
        row(6, answer=None),
    ]
    folder = snapshot(tmp_path, rows)
    cfg = ds_cfg("mmstar", splits=["val"], subset=None)
    assert hf_patterns(folder, cfg) == ["mmstar.parquet"]  # MMStar.tsv is not downloaded
    out = tmp_path / "out"
    stats = normalize_dataset("mmstar", cfg, folder, out, seed=0, max_image_pixels=LIMIT)
    split = stats["splits"]["val"]
    assert (split["rows"], split["records"], split["rejects"]) == (7, 3, 4)
    recs = {r["meta"]["source_id"]: r for r in read(out)}
    assert set(recs) == {"0", "1", "5"}
    r0 = recs["0"]
    assert r0["question"] == "Which option describe the object relationship in the image correctly?"
    assert r0["choices"] == [
        "The suitcase is on the book.",
        "The suitcase is beneath the cat.",
        "The suitcase is beneath the bed.",
        "The suitcase is beneath the book.",
    ]
    assert r0["answer"]["label"] == 1 and recs["1"]["answer"]["label"] == 3
    assert recs["5"]["choices"] == ["yes", "no"] and recs["5"]["answer"]["label"] == 1
    assert r0["meta"]["category"] == "instance reasoning" and r0["meta"]["source"] == "MMBench"
    assert r0["meta"]["index"] == 0 and r0["meta"]["source_split"] == "val"
    rejects = {r["source_id"]: r for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rejects["2"]["field"] == "answer" and "not one of the options" in rejects["2"]["reason"]
    assert rejects["3"]["field"] == "question" and "Options:" in rejects["3"]["reason"]
    assert rejects["4"]["field"] == "image"
    assert rejects["6"]["field"] == "answer"


def test_split_options_keeps_commas_inside_option_text():
    stem, opts = split_options("Count them.\nOptions: A: 1, 2 and 3, B: 4,5, C: six\nD: seven")
    assert stem == "Count them." and opts == ["1, 2 and 3", "4,5", "six", "seven"]
    with pytest.raises(Reject, match="at least two"):
        split_options("Q? Options: A: only one")
    with pytest.raises(Reject, match="no 'Options:"):
        split_options("Q? Options: B: x, C: y")


def test_snapshot_without_the_val_file_is_one_line(tmp_path):
    folder = snapshot(tmp_path, [row(0)])
    (folder / "mmstar.parquet").unlink()
    with pytest.raises(VovnetError, match=r"no files match mmstar.parquet \(config 'val', split 'val'\)"):
        normalize_dataset(
            "mmstar",
            ds_cfg("mmstar", splits=["val"], subset=None),
            folder,
            tmp_path / "o",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o").exists()


def test_mmstar_question_drawn_from_mmbench_trips_the_guard(tmp_path):
    """MMStar takes questions from MMBench (meta_info.source): the shared image+question key links the two,
    so merge (guard_sets) and evaluation (find_overlap) see an MMStar question that is also a training one."""
    mmstar_out, mmb_out = tmp_path / "mmstar_out", tmp_path / "mmb_out"
    normalize_dataset(
        "mmstar",
        ds_cfg("mmstar", splits=["val"], subset=None),
        snapshot(tmp_path, [row(0), row(1)]),
        mmstar_out,
        seed=0,
        max_image_pixels=LIMIT,
    )
    stem = QUESTION.split("\nOptions:")[0]
    mmb = tmp_path / "mmbench"
    write_tsv(
        mmb / "MMBench_DEV_EN.tsv",
        [
            mmb_row(7, question=stem, image=b64(jpeg_bytes(seed=0))),  # MMStar row 0
            mmb_row(8, question="Another question?", image=b64(jpeg_bytes(seed=1))),
            mmb_row(9, question=stem, image=b64(jpeg_bytes(seed=5))),
        ],
    )
    normalize_dataset("mmbench", ds_cfg("mmbench", splits=["dev"]), mmb, mmb_out, seed=0, max_image_pixels=LIMIT)
    train = [json.loads(x) for x in (mmb_out / "mmbench_dev.jsonl").read_text().splitlines()]
    star = read(mmstar_out)
    hits = find_overlap(train, star)
    by_id = {r["id"]: r for r in train + star}
    assert [(by_id[a]["meta"]["index"], by_id[b]["meta"]["source_id"]) for a, b in hits] == [(7, "0")]
