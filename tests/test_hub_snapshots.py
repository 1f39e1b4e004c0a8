"""Partial hub snapshots, shaped as `download` leaves them: a README listing every config, the files of
only some. Built with `datasets` in the real column names and types (images as the HF Image struct)."""

import json

import datasets
import pytest
from conftest import ds_cfg, hf_patterns, jpeg_bytes, mmb_row, normalize_dataset, write_tsv
from helpers import LIMIT

from vovnet import VovnetError
from vovnet.data import hf_source
from vovnet.data.merge import group_ids
from vovnet.data.overlap import find_overlap

V = datasets.Value
IMG = datasets.Image()
LITE_CONFIGS = [
    "ai2d",
    "chartqa",
    "coco2017_cap_val",
    "docvqa_val",
    "flickr30k_test",
    "gqa",
    "infovqa_val",
    "mmbench_cn_dev",
    "mmbench_en_dev",
    "nocaps_val",
    "ok_vqa_val2014",
    "refcoco_bbox_val",
    "seedbench",
    "textcaps_val",
    "textvqa_val",
    "vizwiz_vqa_val",
    "vqav2_val",
]
MMMU_SUBJECTS = [
    "Accounting",
    "Agriculture",
    "Architecture_and_Engineering",
    "Art",
    "Art_Theory",
    "Basic_Medical_Science",
    "Biology",
    "Chemistry",
    "Clinical_Medicine",
    "Computer_Science",
    "Design",
    "Diagnostics_and_Laboratory_Medicine",
    "Economics",
    "Electronics",
    "Energy_and_Power",
    "Finance",
    "Geography",
    "History",
    "Literature",
    "Manage",
    "Marketing",
    "Materials",
    "Math",
    "Mechanical_Engineering",
    "Music",
    "Pharmacy",
    "Physics",
    "Psychology",
    "Public_Health",
    "Sociology",
]


def card(configs: dict[str, dict[str, str]]) -> str:
    """A README whose `configs:` metadata maps each config's splits to file patterns (the hub's form)."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, path in splits.items():
            lines += [f"  - split: {split}", f"    path: {path}"]
    return "\n".join(lines + ["---", "# card", ""])


def mmbench_features(index_dtype="int64"):
    return datasets.Features(
        {
            "index": V(index_dtype),
            "question": V("string"),
            "hint": V("string"),
            "answer": V("string"),
            "A": V("string"),
            "B": V("string"),
            "C": V("string"),
            "D": V("string"),
            "category": V("string"),
            "image": IMG,
            "source": V("string"),
            "L2-category": V("string"),
            "comment": V("string"),
            "split": V("string"),
        }
    )


def mmbench_rows(indices, split="dev", seed=0, index_type=int):
    rows = []
    for i in indices:
        rows.append(
            {
                "index": index_type(i),
                "question": f"Question {i % 1_000_000}?",
                "hint": None,
                "answer": "A" if split == "dev" else None,
                "A": "yes",
                "B": "no",
                "C": None,
                "D": None,
                "category": "cat",
                "image": {"bytes": jpeg_bytes(seed=seed + i % 1_000_000), "path": None},
                "source": "src",
                "L2-category": "l2",
                "comment": None,
                "split": split,
            }
        )
    return rows


def write_parquet(path, rows, features):
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


@pytest.fixture
def lite_snapshot(tmp_path):
    """LMMs-Eval-Lite after `download` of mmbench_en_dev: 17 configs listed, `ai2d` first; one present."""
    folder = tmp_path / "lite"
    folder.mkdir()
    (folder / "README.md").write_text(card({c: {"lite": f"{c}/lite-*"} for c in LITE_CONFIGS}))
    write_parquet(
        folder / "mmbench_en_dev" / "lite-00000-of-00001.parquet",
        mmbench_rows([1, 2, 1_000_001], seed=50),
        mmbench_features(),
    )
    return folder


def read(out, name, split):
    return [json.loads(x) for x in (out / f"{name}_{split}.jsonl").read_text().splitlines()]


def test_lite_partial_snapshot_reads_its_config_only(tmp_path, lite_snapshot):
    out = tmp_path / "out"
    cfg = ds_cfg("mmbench_lite", splits=["lite"], subset="mmbench_en_dev")
    stats = normalize_dataset("mmbench_lite", cfg, lite_snapshot, out, seed=0, max_image_pixels=LIMIT)
    split = stats["splits"]["lite"]
    assert split["records"] == 3 and split["rows"] == 3
    assert [f["name"] for f in split["source_files"]] == ["mmbench_en_dev/lite-00000-of-00001.parquet"]
    assert len(split["source_files"][0]["sha256"]) == 64 and split["source_files"][0]["bytes"] > 0
    recs = read(out, "mmbench_lite", "lite")
    assert {r["meta"]["source_split"] for r in recs} == {"dev"} and {r["meta"]["l2_category"] for r in recs} == {"l2"}
    # the first config's files are absent: asking for it names the pattern and the folder
    with pytest.raises(VovnetError, match=r"lite: no files match ai2d/lite-\* \(config 'ai2d', split 'lite'\)"):
        normalize_dataset(
            "mmbench_lite",
            ds_cfg("mmbench_lite", splits=["lite"], subset="ai2d"),
            lite_snapshot,
            tmp_path / "o2",
            seed=0,
            max_image_pixels=LIMIT,
        )
    with pytest.raises(VovnetError, match=r"no config 'mmbench'; it has: ai2d, chartqa, .*vqav2_val$"):
        normalize_dataset(
            "mmbench_lite",
            ds_cfg("mmbench_lite", splits=["lite"], subset="mmbench"),
            lite_snapshot,
            tmp_path / "o3",
            seed=0,
            max_image_pixels=LIMIT,
        )
    with pytest.raises(VovnetError, match=r"config 'mmbench_en_dev' has no split 'dev'; it has: lite"):
        normalize_dataset(
            "mmbench_lite",
            ds_cfg("mmbench_lite", splits=["dev"], subset="mmbench_en_dev"),
            lite_snapshot,
            tmp_path / "o4",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def mmmu_features():
    return datasets.Features(
        {
            "id": V("string"),
            "question": V("string"),
            "options": V("string"),
            "explanation": V("string"),
            **{f"image_{k}": IMG for k in range(1, 8)},
            "img_type": V("string"),
            "answer": V("string"),
            "topic_difficulty": V("string"),
            "question_type": V("string"),
            "subfield": V("string"),
        }
    )


def mmmu_row(subject, n):
    return {
        "id": f"validation_{subject}_{n}",
        "question": f"<image 1> {subject} question {n}?",
        "options": "['A', 'B', 'C']",
        "explanation": "",
        "image_1": {"bytes": jpeg_bytes(seed=n), "path": None},
        **{f"image_{k}": None for k in range(2, 8)},
        "img_type": "['Diagrams']",
        "answer": "B",
        "topic_difficulty": "Medium",
        "question_type": "multiple-choice",
        "subfield": "sub",
    }


@pytest.fixture
def mmmu_snapshot(tmp_path):
    """MMMU/MMMU with 30 subject configs (Accounting first); only Art's and Math's validation files."""
    folder = tmp_path / "mmmu"
    folder.mkdir()
    (folder / "README.md").write_text(
        card({s: {sp: f"{s}/{sp}-*" for sp in ("dev", "validation", "test")} for s in MMMU_SUBJECTS})
    )
    for subject, n in (("Art", 2), ("Math", 3)):
        write_parquet(
            folder / subject / "validation-00000-of-00001.parquet",
            [mmmu_row(subject, i) for i in range(n)],
            mmmu_features(),
        )
    return folder


def test_mmmu_subject_list_skipping_the_first_subject(tmp_path, mmmu_snapshot):
    cfg = ds_cfg("mmmu", splits=["validation"], subset=["Math", "Art"])
    stats = normalize_dataset("mmmu", cfg, mmmu_snapshot, tmp_path / "out", seed=0, max_image_pixels=LIMIT)
    assert stats["splits"]["validation"]["records"] == 5
    assert [f["name"] for f in stats["splits"]["validation"]["source_files"]] == [
        "Art/validation-00000-of-00001.parquet",
        "Math/validation-00000-of-00001.parquet",
    ]
    with pytest.raises(VovnetError, match=r"no files match Accounting/validation-\* \(config 'Accounting'"):
        normalize_dataset(
            "mmmu",
            ds_cfg("mmmu", splits=["validation"], subset="all"),
            mmmu_snapshot,
            tmp_path / "o2",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o2").exists()


def textvqa_features():
    seq = datasets.Sequence(V("string"))
    return datasets.Features(
        {
            "image_id": V("string"),
            "question_id": V("int32"),
            "question": V("string"),
            "question_tokens": seq,
            "image": IMG,
            "image_width": V("int32"),
            "image_height": V("int32"),
            "flickr_original_url": V("string"),
            "flickr_300k_url": V("string"),
            "answers": seq,
            "image_classes": seq,
            "set_name": V("string"),
            "ocr_tokens": seq,
        }
    )


def textvqa_row(i):
    return {
        "image_id": f"img{i:04d}",
        "question_id": 34602 + i,
        "question": f"what does sign {i} say?",
        "question_tokens": ["what", "does"],
        "image": {"bytes": jpeg_bytes(seed=i), "path": None},
        "image_width": 32,
        "image_height": 32,
        "flickr_original_url": "",
        "flickr_300k_url": "",
        "answers": ["stop"] * 9 + ["go"],
        "image_classes": ["Sign"],
        "set_name": "val",
        "ocr_tokens": ["stop"],
    }


@pytest.fixture
def textvqa_snapshot(tmp_path):
    """lmms-lab/textvqa with only one validation shard, next to the train/test patterns of its card."""
    folder = tmp_path / "textvqa"
    folder.mkdir()
    (folder / "README.md").write_text(card({"default": {s: f"data/{s}-*" for s in ("train", "validation", "test")}}))
    write_parquet(
        folder / "data" / "validation-00000-of-00003.parquet", [textvqa_row(i) for i in range(4)], textvqa_features()
    )
    return folder


def test_textvqa_validation_shard_only(tmp_path, textvqa_snapshot):
    out = tmp_path / "out"
    stats = normalize_dataset(
        "textvqa", ds_cfg("textvqa", splits=["validation"]), textvqa_snapshot, out, seed=0, max_image_pixels=LIMIT
    )
    assert stats["splits"]["validation"]["records"] == 4
    assert {r["answer"]["text"] for r in read(out, "textvqa", "validation")} == {"stop"}
    with pytest.raises(VovnetError, match=r"no files match data/test-\* \(config 'default', split 'test'\)"):
        normalize_dataset(
            "textvqa",
            ds_cfg("textvqa", splits=["test"]),
            textvqa_snapshot,
            tmp_path / "o2",
            seed=0,
            max_image_pixels=LIMIT,
        )


def test_truncated_shard_is_one_line_and_nothing_is_written(tmp_path, textvqa_snapshot):
    shard = textvqa_snapshot / "data" / "validation-00000-of-00003.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(VovnetError, match=r"validation-00000-of-00003.parquet: unreadable parquet \(truncated"):
        normalize_dataset(
            "textvqa",
            ds_cfg("textvqa", splits=["validation"]),
            textvqa_snapshot,
            tmp_path / "out",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "out").exists()


@pytest.fixture
def mmbench_snapshot(tmp_path):
    """lmms-lab/MMBench: configs cc/cn/en, `L2-category`, en's index a string; only en's files present."""
    folder = tmp_path / "mmbench"
    folder.mkdir()
    (folder / "README.md").write_text(
        card(
            {
                "cc": {"test": "cc/test-*"},
                "cn": {"dev": "cn/dev-*", "test": "cn/test-*"},
                "en": {"dev": "en/dev-*", "test": "en/test-*"},
            }
        )
    )
    dev = [1, 2, 3, 1_000_001, 1_000_002, 1_000_003]
    write_parquet(
        folder / "en" / "dev-00000-of-00001.parquet", mmbench_rows(dev, index_type=str), mmbench_features("string")
    )
    write_parquet(
        folder / "en" / "test-00000-of-00001.parquet",
        mmbench_rows([1, 2], split="test", seed=100, index_type=str),
        mmbench_features("string"),
    )
    return folder


def test_mmbench_en_config_and_lite_linked_by_source_index(tmp_path, mmbench_snapshot, lite_snapshot):
    out = tmp_path / "out"
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev", "test"]), mmbench_snapshot, out, seed=0, max_image_pixels=LIMIT
    )
    assert stats["splits"]["dev"]["records"] == 6 and stats["splits"]["test"]["records"] == 2
    dev = read(out, "mmbench", "dev")
    assert {r["meta"]["l2_category"] for r in dev} == {"l2"}
    assert sorted(r["meta"]["circular_group"] for r in dev) == [1, 1, 2, 2, 3, 3]
    assert all(r["answer"]["label"] is None for r in read(out, "mmbench", "test"))
    normalize_dataset(
        "mmbench_lite",
        ds_cfg("mmbench_lite", splits=["lite"], subset="mmbench_en_dev"),
        lite_snapshot,
        tmp_path / "lite",
        seed=0,
        max_image_pixels=LIMIT,
    )
    lite = read(tmp_path / "lite", "mmbench_lite", "lite")
    # Lite's images were encoded apart (other bytes): only the source index links its items to dev's
    assert not {im["sha256"] for r in lite for im in r["images"]} & {im["sha256"] for r in dev for im in r["images"]}
    hits = find_overlap(lite, dev)
    assert len(hits) == 3
    groups = dict(zip([r["id"] for r in dev + lite], group_ids(dev + lite)))
    by_index = {}
    for r in dev + lite:
        by_index.setdefault(r["meta"]["circular_group"], set()).add(groups[r["id"]])
    assert all(len(g) == 1 for g in by_index.values())  # each dev question and its Lite copy: one group
    assert find_overlap(read(out, "mmbench", "test"), dev) == []  # test's index 1 is not dev's index 1


def test_download_patterns_are_the_wanted_configs_and_splits(
    tmp_path, lite_snapshot, mmmu_snapshot, textvqa_snapshot, mmbench_snapshot
):
    assert hf_patterns(lite_snapshot, ds_cfg("mmbench_lite", splits=["lite"], subset="mmbench_en_dev")) == [
        "mmbench_en_dev/lite-*"
    ]
    assert hf_patterns(mmmu_snapshot, ds_cfg("mmmu", splits=["validation"], subset=["Math", "Art"])) == [
        "Art/validation-*",
        "Math/validation-*",
    ]
    assert len(hf_patterns(mmmu_snapshot, ds_cfg("mmmu", splits=["validation"], subset="all"))) == 30
    assert hf_patterns(textvqa_snapshot, ds_cfg("textvqa", splits=["validation"])) == ["data/validation-*"]
    assert hf_patterns(mmbench_snapshot, ds_cfg("mmbench", splits=["dev", "test"])) == ["en/dev-*", "en/test-*"]
    with pytest.raises(VovnetError, match=r"config 'default' has no split 'val2'; it has: train, validation, test"):
        hf_patterns(textvqa_snapshot, ds_cfg("textvqa", splits=["val2"]))


def test_card_data_files_forms(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n- config_name: a\n  data_files: a.csv\n- config_name: b\n"
        "  data_files:\n    dev: b/dev.parquet\n    test: [b/t1.parquet, b/t2.parquet]\n"
        "  default: true\n---\n"
    )
    configs = {c.name: c for c in hf_source.card_configs(tmp_path)}
    assert configs["a"].data_files == {"train": ["a.csv"]}
    assert configs["b"].data_files == {"dev": ["b/dev.parquet"], "test": ["b/t1.parquet", "b/t2.parquet"]}
    assert [c.name for c in hf_source.select_configs(tmp_path, list(configs.values()), None)] == ["b"]


# --- one file, one split ---


def test_cn_tsv_never_serves_lang_en(tmp_path):
    raw = tmp_path / "raw"
    write_tsv(raw / "MMBench_DEV_CN.tsv", [mmb_row(1), mmb_row(2)])
    with pytest.raises(VovnetError, match=r"no MMBench TSV \(lang en\) file for split 'dev'"):
        normalize_dataset(
            "mmbench", ds_cfg("mmbench", splits=["dev"]), raw, tmp_path / "out", seed=0, max_image_pixels=LIMIT
        )
    assert not (tmp_path / "out").exists()


def test_dev_tsv_alone_never_feeds_test(tmp_path):
    raw = tmp_path / "raw"
    write_tsv(raw / "MMBench_DEV_EN.tsv", [mmb_row(1), mmb_row(2)])
    with pytest.raises(
        VovnetError, match=r"no MMBench TSV \(lang en\) file for split 'test' \(found: MMBench_DEV_EN.tsv\)"
    ):
        normalize_dataset(
            "mmbench", ds_cfg("mmbench", splits=["dev", "test"]), raw, tmp_path / "out", seed=0, max_image_pixels=LIMIT
        )
    assert not (tmp_path / "out").exists()
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), raw, tmp_path / "out", seed=0, max_image_pixels=LIMIT
    )
    assert stats["splits"]["dev"]["records"] == 2


def test_tsv_named_for_no_split_serves_its_split_column(tmp_path):
    raw = tmp_path / "raw"
    write_tsv(raw / "mmbench.tsv", [mmb_row(1), mmb_row(2)])  # split column: dev
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), raw, tmp_path / "o1", seed=0, max_image_pixels=LIMIT
    )
    assert stats["splits"]["dev"]["records"] == 2
    with pytest.raises(VovnetError, match=r"no MMBench TSV .* for split 'test' \(found: mmbench.tsv\)"):
        normalize_dataset(
            "mmbench", ds_cfg("mmbench", splits=["test"]), raw, tmp_path / "o2", seed=0, max_image_pixels=LIMIT
        )


def test_llava_files_per_split(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    conv = [{"id": "1", "conversations": [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "yes"}]}]
    for name in ("llava_instruct_150k.json", "complex_reasoning_77k.json"):
        (raw / name).write_text(json.dumps(conv))
    with pytest.raises(
        VovnetError,
        match=r"no LLaVA JSON file for split 'train' \(found: complex_reasoning_77k.json, "
        r"llava_instruct_150k.json\).*splits: \{train: <file>\}",
    ):
        normalize_dataset(
            "llava", ds_cfg("llava", splits=["train"]), raw, tmp_path / "o1", seed=0, max_image_pixels=LIMIT
        )
    stats = normalize_dataset(
        "llava",
        ds_cfg("llava", splits={"train": "llava_instruct_150k.json"}),
        raw,
        tmp_path / "o2",
        seed=0,
        max_image_pixels=LIMIT,
    )
    assert stats["splits"]["train"]["source_files"][0]["name"] == "llava_instruct_150k.json"
    with pytest.raises(VovnetError, match=r"splits.train: '../x.json' must be a path inside"):
        normalize_dataset(
            "llava",
            ds_cfg("llava", splits={"train": "../x.json"}),
            raw,
            tmp_path / "o3",
            seed=0,
            max_image_pixels=LIMIT,
        )


@pytest.mark.slow
def test_snapshots_through_params_and_dvc_repro(
    tmp_path, lite_snapshot, mmmu_snapshot, textvqa_snapshot, mmbench_snapshot
):
    from conftest import copy_repo, sh
    from ruamel.yaml import YAML

    repo = copy_repo(tmp_path / "repo")
    yaml = YAML()
    params = yaml.load((repo / "params.yaml").read_text())
    sources = {
        "mmbench": (mmbench_snapshot, None, ["dev", "test"]),
        "mmbench_lite": (lite_snapshot, "mmbench_en_dev", ["lite"]),
        "mmmu": (mmmu_snapshot, ["Art", "Math"], ["validation"]),
        "textvqa": (textvqa_snapshot, None, ["validation"]),
    }
    for name, (folder, subset, splits) in sources.items():
        params["datasets"][name].update({"source": str(folder), "subset": subset, "splits": splits})
    with open(repo / "params.yaml", "w") as fh:
        yaml.dump(params, fh)
    out = sh(repo, "dvc", "repro", *(f"normalize@{n}" for n in sources))
    assert "mmbench/dev: 6 rows from en/dev-00000-of-00001.parquet" in out
    counts = {
        n: {
            s: v["records"]
            for s, v in json.loads((repo / "metrics" / "normalize" / f"{n}.json").read_text())["splits"].items()
        }
        for n in sources
    }
    assert counts == {
        "mmbench": {"dev": 6, "test": 2},
        "mmbench_lite": {"lite": 3},
        "mmmu": {"validation": 5},
        "textvqa": {"validation": 4},
    }
    # a folder holding only the VLMEvalKit dev TSV, under the default splits [dev, test]: a clear error
    only_dev = tmp_path / "only_dev"
    write_tsv(only_dev / "MMBench_DEV_EN.tsv", [mmb_row(1)])
    params["datasets"]["mmbench"].update({"source": str(only_dev), "subset": None})
    with open(repo / "params.yaml", "w") as fh:
        yaml.dump(params, fh)
    failed = sh(repo, "dvc", "repro", "normalize@mmbench", check=False)
    assert "no MMBench TSV (lang en) file for split 'test' (found: MMBench_DEV_EN.tsv)" in failed
    assert "Traceback" not in failed
    assert not (repo / "data" / "processed" / "mmbench" / "mmbench_test.jsonl").exists()  # never a copy of dev


def test_llava_folder_made_by_download(tmp_path):
    from vovnet.data.download import fetch

    src = tmp_path / "src"
    src.mkdir()
    (src / "llava_instruct_150k.json").write_text(
        json.dumps([{"id": "1", "conversations": [{"from": "human", "value": "hi?"}, {"from": "gpt", "value": "yes"}]}])
    )
    cfg = ds_cfg("llava", source=str(src), splits=["train"])
    fetch("llava", cfg, tmp_path / "raw")  # writes SOURCE.json next to the data: never a candidate file
    stats = normalize_dataset("llava", cfg, tmp_path / "raw", tmp_path / "out", seed=0, max_image_pixels=LIMIT)
    assert stats["splits"]["train"]["records"] == 1
