"""POPE (lmms-lab/POPE) as `download` leaves it: a README listing the `default` config (data/test-*, three
shards) and `Full` (a split per category), with only the default's files. Columns as the hub publishes them:
id, question_id, question, answer, image_source, image, category."""

import json

import datasets
import pytest
from conftest import ds_cfg, hf_patterns, jpeg_bytes, normalize_dataset
from helpers import LIMIT

from vovnet import VovnetError

V = datasets.Value
# the hub card's configs, as the shipped sample writes them (one statement of the layout)
from vovnet.tasks.pope.sample import CARD  # noqa: E402

FEATURES = datasets.Features(
    {
        "id": V("string"),
        "question_id": V("string"),
        "question": V("string"),
        "answer": V("string"),
        "image_source": V("string"),
        "image": datasets.Image(),
        "category": V("string"),
    }
)


def row(i, answer="yes", category="adversarial", image=True):
    return {
        "id": str(i),
        "question_id": str(i + 1),
        "question": f"Is there a dog in the image {i}?",
        "answer": answer,
        "image_source": f"COCO_val2014_{i:012d}",
        "image": {"bytes": jpeg_bytes(seed=i), "path": None} if image else None,
        "category": category,
    }


def snapshot(tmp_path, shards):
    folder = tmp_path / "pope"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text(CARD)
    for k, rows in enumerate(shards):
        datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(
            str(folder / "data" / f"test-{k:05d}-of-{len(shards):05d}.parquet")
        )
    return folder


def test_default_config_shards_only_and_rejects(tmp_path):
    shards = [
        [row(0), row(1, answer="no", category="popular"), row(2, answer="Yes")],
        [row(3, answer="maybe"), row(4, answer=None), row(5, image=False), row(6, answer=" No ", category="random")],
    ]
    folder = snapshot(tmp_path, shards)
    cfg = ds_cfg("pope", splits=["test"], subset=None)
    assert hf_patterns(folder, cfg) == ["data/test-*"]  # the Full config's files are not fetched
    out = tmp_path / "out"
    stats = normalize_dataset("pope", cfg, folder, out, seed=0, max_image_pixels=LIMIT)
    split = stats["splits"]["test"]
    assert (split["rows"], split["records"], split["rejects"]) == (7, 4, 3)
    recs = {r["meta"]["source_id"]: r for r in map(json.loads, (out / "pope_test.jsonl").read_text().splitlines())}
    assert {k: r["answer"]["text"] for k, r in recs.items()} == {"1": "yes", "2": "no", "3": "yes", "7": "no"}
    assert (
        recs["2"]["meta"]["category"] == "popular" and recs["1"]["meta"]["image_source"] == "COCO_val2014_000000000000"
    )
    assert all(r["choices"] is None for r in recs.values())
    rejects = {r["source_id"]: r for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rejects["4"]["field"] == "answer" and "expected yes or no" in rejects["4"]["reason"]
    assert rejects["5"]["field"] == "answer" and rejects["6"]["field"] == "image"


def test_full_config_named_but_absent_is_one_line(tmp_path):
    folder = snapshot(tmp_path, [[row(0)]])
    with pytest.raises(VovnetError, match=r"no files match Full/adversarial-\* \(config 'Full', split 'adversarial'\)"):
        normalize_dataset(
            "pope",
            ds_cfg("pope", splits=["adversarial"], subset="Full"),
            folder,
            tmp_path / "o",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o").exists()
