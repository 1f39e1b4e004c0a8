"""The contract every task with a shipped sample keeps, one test over the registry instead of a copy per
task: its sample (data/samples/<name>, what its sample maker writes) normalizes through its adapter, as the
default pipeline's normalize stage runs it, with records in every split and no rejects. What a task's sample
is known to hold is checked after, from SAMPLE_FACTS."""

import json
from collections import Counter

import pytest
from conftest import normalize_dataset
from helpers import LIMIT, ROOT

from vovnet import registry
from vovnet.config import load_params


def _mmstar(records):
    assert {len(r["choices"]) for r in records} == {4}
    assert len({r["meta"]["category"] for r in records}) == 6


def _pope(records):
    assert sorted(r["answer"]["text"] for r in records) == ["no"] * 6 + ["yes"] * 6
    assert {r["meta"]["category"] for r in records} == {"adversarial", "popular", "random"}


def _scienceqa_img(records):
    assert sorted({len(r["choices"]) for r in records}) == [2, 3, 4, 5]
    assert sum(r["hint"] is not None for r in records) == 5


SAMPLE_FACTS = {  # task -> (records per split, a check of the records)
    "mmstar": ({"val": 12}, _mmstar),
    "pope": ({"test": 12}, _pope),
    "scienceqa_img": ({"test": 10}, _scienceqa_img),
}


def _shipped_entry(name: str) -> tuple[str, dict]:
    """The params.yaml dataset that reads task `name`'s shipped sample."""
    datasets = load_params(ROOT / "params.yaml")["datasets"]
    found = [(k, v) for k, v in datasets.items() if v["adapter"] == name and v["source"] == f"data/samples/{name}"]
    assert len(found) == 1, f"params.yaml: expected one dataset reading data/samples/{name}, found {found}"
    return found[0]


@pytest.mark.parametrize("name", registry.SAMPLES)
def test_a_task_s_shipped_sample_normalizes_with_records_in_every_split_and_no_rejects(name, tmp_path):
    dataset, cfg = _shipped_entry(name)
    if cfg.get("image_root"):  # a root inside the raw copy download@ makes: the same files in the sample
        cfg = {**cfg, "image_root": cfg["image_root"].replace(f"data/raw/{dataset}", str(ROOT / cfg["source"]))}
    out = tmp_path / dataset
    stats = normalize_dataset(dataset, cfg, ROOT / cfg["source"], out, seed=0, max_image_pixels=LIMIT)
    assert stats["rejects"] == 0, (out / "rejects.jsonl").read_text()
    counts = {split: stats["splits"][split]["records"] for split in cfg["splits"]}
    assert all(n > 0 for n in counts.values()), counts
    records = [
        json.loads(x) for split in cfg["splits"] for x in (out / f"{dataset}_{split}.jsonl").read_text().splitlines()
    ]
    assert Counter(r["id"] for r in records).most_common(1)[0][1] == 1  # ids are unique across the splits
    if name in SAMPLE_FACTS:
        expected, check = SAMPLE_FACTS[name]
        assert counts == expected
        check(records)


def test_the_contract_covers_every_task_that_ships_a_sample():
    assert set(registry.SAMPLES) == {
        p.name for p in (ROOT / "data" / "samples").iterdir() if p.is_dir() and not p.name.startswith(".")
    }
    assert set(SAMPLE_FACTS) <= set(registry.SAMPLES)
