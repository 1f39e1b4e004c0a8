"""easy-VQA: the `package:` download kind, the adapter's split draw and rewrite, bad rows, and the preset
that runs the demo's recipe on it."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from conftest import normalize_dataset
from PIL import Image, ImageDraw

from vovnet import VovnetError
from vovnet.config import dataset_config
from vovnet.data.download import fetch, package_path
from vovnet.data.image_store import ImageStore
from vovnet.data.overlap import find_overlap
from vovnet.io_utils import read_jsonl
from vovnet.presets import _overlay
from vovnet.registry import defaults

pytest.importorskip("easy_vqa", reason="requirements.txt installs the easy-vqa package")

SIZES = {"train": 60, "policy": 20, "heldout": 20}


def cfg_for(source: str, **generator) -> dict:
    spec = {**defaults("easy_vqa")["dataset"]["generator"], "sizes": SIZES, **generator}
    return dataset_config("easy_vqa", {"adapter": "easy_vqa", "source": source, "generator": spec})


def normalized(cfg: dict, tmp_path: Path, name: str = "p") -> tuple[Path, dict]:
    fetch("easy_vqa", cfg, tmp_path / f"raw-{name}")
    out = tmp_path / name
    return out, normalize_dataset("easy_vqa", cfg, tmp_path / f"raw-{name}", out, seed=0, max_image_pixels=10**7)


def test_the_package_data_flows_through_download_and_normalize(tmp_path):
    cfg = cfg_for("package:easy_vqa/data")
    out, stats = normalized(cfg, tmp_path)
    assert {s: v["records"] for s, v in stats["splits"].items()} == SIZES and stats["rejects"] == 0
    split = {s: list(read_jsonl(out / f"easy_vqa_{s}.jsonl")) for s in SIZES}
    for recs in split.values():
        assert sum(r["meta"]["family"] == "stated" for r in recs) == len(recs) // 2  # exactly half
        for r in recs:
            assert (r["hint"] == f"The answer is {r['answer']['text']}.") == (r["meta"]["family"] == "stated")
            assert r["meta"]["family"] in ("stated", r["meta"]["type"])
    # train and policy come from the package's train images, disjoint; heldout from its test images
    images = {s: {r["meta"]["image"] for r in recs} for s, recs in split.items()}
    assert not images["train"] & images["policy"]
    assert {r["meta"]["source_id"].split("-")[0] for r in split["heldout"]} == {"test"}
    assert {r["meta"]["source_id"].split("-")[0] for r in split["train"] + split["policy"]} == {"train"}
    assert not find_overlap(split["policy"], split["train"])
    # the record's image is the package's own file, byte for byte
    rec = split["train"][0]
    pkg = package_path("package:easy_vqa/data")
    idx = int(rec["meta"]["source_id"].split("-")[1])
    question, answer, image_id = json.loads((pkg / "train" / "questions.json").read_text())[idx]
    assert (rec["question"].lower(), rec["answer"]["text"]) == (question.lower(), answer)
    stored = ImageStore(out).open(rec["images"][0]["sha256"])
    assert stored.size == (64, 64) and stored.tobytes() == Image.open(pkg / f"train/images/{image_id}.png").tobytes()
    # the same spec gives the same splits; another seed draws others
    _, again = normalized(cfg, tmp_path, "again")
    assert again["splits"] == stats["splits"]
    _, other = normalized(cfg_for("package:easy_vqa/data", seed=1), tmp_path, "other")
    assert other["splits"]["train"]["sha256"] != stats["splits"]["train"]["sha256"]


def test_package_download_is_a_no_op_when_unchanged_and_names_a_missing_package(tmp_path):
    cfg = cfg_for("package:easy_vqa/data")
    assert fetch("easy_vqa", cfg, tmp_path / "raw") is True
    assert (tmp_path / "raw" / "train" / "questions.json").is_file()
    assert fetch("easy_vqa", cfg, tmp_path / "raw") is False
    missing = cfg_for("package:no_such_package_here/data")
    with pytest.raises(VovnetError, match=r"no_such_package_here/data \(its package is not installed: pip install"):
        fetch("easy_vqa", missing, tmp_path / "raw2")
    with pytest.raises(VovnetError, match=r"expected package:<module>/<folder inside it>"):
        fetch("easy_vqa", cfg_for("package:easy_vqa/../x"), tmp_path / "raw3")


def test_a_pulled_copy_is_kept_where_the_package_is_not_installed(tmp_path, caplog):
    fetch("easy_vqa", cfg_for("package:easy_vqa/data"), tmp_path / "raw")
    moved = cfg_for("package:not_installed_here/data")  # a server that pulled data/raw/easy_vqa with DVC
    with caplog.at_level(logging.WARNING):
        assert fetch("easy_vqa", moved, tmp_path / "raw", locked=True) is False  # dvc.lock holds these params
    assert "is not on this machine; params match dvc.lock: keeping" in caplog.text


def write_layout(root: Path, train_rows: list, test_rows: list, images: list[int]) -> None:
    """The package's data layout: {train,test}/questions.json ([question, answer, image id]) and images/<id>.png."""
    for split, rows in (("train", train_rows), ("test", test_rows)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "questions.json").write_text(json.dumps(rows))
        for i in images:
            img = Image.new("RGB", (64, 64), (250, 248, 245))
            ImageDraw.Draw(img).ellipse((10 + i, 12, 40 + i, 42), fill=(30 + 20 * i, 60, 200))
            img.save(root / split / "images" / f"{i}.png")
    (root / "answers.txt").write_text("circle\nblue\nyes\nno\n")


def test_bad_rows_are_counted_rejects_naming_the_field(tmp_path):
    good = [["what shape is in the image?", "circle", i] for i in range(4)]
    bad = [["is there a blue shape?", "yes", 99], ["what color is the shape?", None, 1], "not a row", [3, "no", 2]]
    write_layout(tmp_path / "src", good + bad, good, images=list(range(4)))
    cfg = cfg_for(str(tmp_path / "src"), sizes={"train": 8, "policy": 0, "heldout": 4}, policy_images=0.0)
    cfg["splits"] = ["train", "heldout"]
    out, stats = normalized(cfg, tmp_path)
    assert (stats["splits"]["train"]["records"], stats["splits"]["train"]["rejects"]) == (4, 4)
    reasons = Counter(json.loads(line)["field"] for line in (out / "rejects.jsonl").read_text().splitlines())
    assert reasons == {"image": 1, "answer": 1, "row": 1, "question": 1}
    assert stats["splits"]["heldout"]["records"] == 4


def test_spec_errors_are_one_line(tmp_path):
    write_layout(tmp_path / "src", [["q?", "yes", 0]], [["q?", "no", 0]], images=[0])
    with pytest.raises(VovnetError, match=r"generator: expected exactly the keys .*, got \['seed', 'sizes'\]$"):
        bad = cfg_for(str(tmp_path / "src"))
        bad["generator"] = {"seed": 0, "sizes": SIZES}
        normalized(bad, tmp_path, "a")
    with pytest.raises(VovnetError, match=r"generator.sizes.train: 60 questions asked, the split has 1$"):
        normalized(cfg_for(str(tmp_path / "src"), policy_images=0.0), tmp_path, "b")
    with pytest.raises(VovnetError, match=r"generator.stated_fraction must be in \[0, 1\], got 2"):
        normalized(cfg_for(str(tmp_path / "src"), stated_fraction=2), tmp_path, "c")
    bad_values = [
        ({"sizes": {**SIZES, "train": -5}}, r"generator.sizes.train must be a whole number >= 0, got -5$"),
        ({"sizes": {**SIZES, "policy": 2.5}}, r"generator.sizes.policy must be a whole number >= 0, got 2.5$"),
        ({"policy_images": "half"}, r"generator.policy_images must be a number, got 'half'$"),
        ({"seed": None}, r"generator.seed must be a number, got None$"),
    ]
    for k, (override, message) in enumerate(bad_values):
        with pytest.raises(VovnetError, match=message):
            normalized(cfg_for(str(tmp_path / "src"), **override), tmp_path, f"d{k}")


def _flat(d: dict, path: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{path}{k}.") if isinstance(v, dict) else {f"{path}{k}": v})
    return out


def test_the_easy_vqa_preset_is_the_demo_recipe_with_other_dataset_entries():
    demo, easy = _flat(_overlay("demo")), _flat(_overlay("demo_easyvqa"))
    data_keys = ("datasets.", "evaluation.sets.", "merge.", "train.train_file", "train.policy_file")
    differ = {k for k in demo.keys() | easy.keys() if demo.get(k) != easy.get(k)}
    assert differ and all(k.startswith(data_keys) for k in differ), sorted(differ)
    assert list(_overlay("demo_easyvqa")["datasets"]) == ["easy_vqa"]
    assert list(_overlay("demo_easyvqa")["evaluation"]["sets"]) == ["easy_vqa"]
