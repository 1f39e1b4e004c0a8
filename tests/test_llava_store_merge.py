import json
import os

import pytest
from conftest import ds_cfg, jpeg_bytes, normalize_dataset
from helpers import LIMIT

from vovnet import VovnetError
from vovnet.data.image_store import ImageStore
from vovnet.data.merge import merge


def llava_item(i, image):
    return {
        "id": str(i),
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": f"red {i}"}],
    }


def setup_llava(tmp_path, items):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "llava.json").write_text(json.dumps(items))
    root = tmp_path / "images"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg_bytes(seed=1))
    (tmp_path / "secret.jpg").write_bytes(jpeg_bytes(seed=2))
    os.symlink(tmp_path / "secret.jpg", root / "link.jpg")
    return raw, root


def test_llava_paths_never_escape_root(tmp_path):
    items = [
        llava_item(1, "a.jpg"),
        llava_item(2, "../secret.jpg"),
        llava_item(3, str(tmp_path / "secret.jpg")),
        llava_item(4, "link.jpg"),
    ]
    raw, root = setup_llava(tmp_path, items)
    normalize_dataset(
        "llava",
        ds_cfg("llava", splits=["train"], image_root=str(root)),
        raw,
        tmp_path / "o",
        seed=0,
        max_image_pixels=LIMIT,
    )
    recs = (tmp_path / "o" / "llava_train.jsonl").read_text().splitlines()
    assert len(recs) == 1 and json.loads(recs[0])["answer"]["text"] == "red 1"
    rejects = {
        r["source_id"]: r["reason"]
        for r in map(json.loads, (tmp_path / "o" / "rejects.jsonl").read_text().splitlines())
    }
    assert "escapes its root" in rejects["2"] and "escapes its root" in rejects["3"]
    assert "outside" in rejects["4"]


def test_llava_missing_image_error_or_reject(tmp_path, monkeypatch):
    raw, root = setup_llava(tmp_path, [llava_item(1, "a.jpg"), llava_item(2, "nope.jpg")])
    monkeypatch.setenv("VOVNET_IMAGE_ROOTS", str(tmp_path / "elsewhere"))
    with pytest.raises(VovnetError, match=r"row 1 \(id 2\): image 'nope.jpg' not found under any root .*elsewhere"):
        normalize_dataset(
            "llava",
            ds_cfg("llava", splits=["train"], image_root=str(root)),
            raw,
            tmp_path / "o",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "o").exists()
    stats = normalize_dataset(
        "llava",
        ds_cfg("llava", splits=["train"], image_root=str(root), on_missing_image="reject"),
        raw,
        tmp_path / "o",
        seed=0,
        max_image_pixels=LIMIT,
    )
    assert stats["rejects"] == 1 and stats["splits"]["train"]["records"] == 1


def test_llava_image_found_via_env_roots(tmp_path, monkeypatch):
    raw, root = setup_llava(tmp_path, [llava_item(1, "a.jpg")])
    monkeypatch.setenv("VOVNET_IMAGE_ROOTS", f"{tmp_path / 'none'}:{root}")
    stats = normalize_dataset(
        "llava", ds_cfg("llava", splits=["train"]), raw, tmp_path / "o", seed=0, max_image_pixels=LIMIT
    )
    assert stats["splits"]["train"]["records"] == 1


@pytest.mark.parametrize("content,match", [("", "invalid JSON"), ('{"a": 1}', "expected a JSON list")])
def test_llava_bad_files(tmp_path, content, match):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "x.json").write_text(content)
    with pytest.raises(VovnetError, match=match):
        normalize_dataset(
            "llava", ds_cfg("llava", splits=["train"]), raw, tmp_path / "o", seed=0, max_image_pixels=LIMIT
        )


def test_image_store_roundtrip_and_export(tmp_path):
    from conftest import mmb_row, write_tsv

    raw = tmp_path / "raw"
    write_tsv(raw / "MMBench_DEV_EN.tsv", [mmb_row(1), mmb_row(2), mmb_row(1_000_001, image="1")])
    normalize_dataset("mmbench", ds_cfg("mmbench"), raw, tmp_path / "o", seed=0, max_image_pixels=LIMIT)
    store = ImageStore(tmp_path / "o")
    recs = [json.loads(x) for x in (tmp_path / "o" / "mmbench_dev.jsonl").read_text().splitlines()]
    import hashlib

    for r in recs:
        sha = r["images"][0]["sha256"]
        assert hashlib.sha256(store.read(sha)).hexdigest() == sha  # original bytes, not re-encoded
    import tarfile

    with tarfile.open(tmp_path / "o" / "images.tar") as tar:  # a standard tar any tool can list and extract
        members = tar.getmembers()
        assert sorted(m.name.split(".")[0] for m in members) == sorted(store.index)
        for m in members:
            assert tar.extractfile(m).read() == store.read(m.name.split(".")[0]) and m.mtime == 0
    n = store.export([r["images"][0]["sha256"] for r in recs], tmp_path / "export")
    assert n == 2 and sorted(p.suffix for p in (tmp_path / "export").iterdir()) == [".jpg", ".jpg"]


def _rec(i, ds, question, sha, choices=("a", "b"), label=0):
    return {
        "id": f"{ds}-{i}",
        "dataset": ds,
        "split": "s",
        "question": question,
        "hint": None,
        "choices": list(choices),
        "answer": {"label": label, "text": "A", "all": ["A"]},
        "images": [{"sha256": sha, "width": 1, "height": 1, "format": "jpeg"}],
        "meta": {},
    }


def _write(root, ds, split, recs):
    d = root / ds
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{ds}_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


MERGE_CFG = {
    "enabled": True,
    "name": "core",
    "sources": ["mmb/dev", "lite/lite"],
    "heldout_source": "mmb/dev",
    "heldout_fraction": 0.4,
    "val_fraction": 0.2,
    "guard_sets": ["ev/validation"],
    "allow_overlap": False,
}


def test_merge_keeps_groups_together_and_lite_out_of_heldout(tmp_path):
    mmb = []
    for g in range(40):  # circular copies: same image & question, rotated options
        mmb += [
            _rec(f"{g}a", "mmb", f"q{g}", f"img{g}", ("x", "y")),
            _rec(f"{g}b", "mmb", f"q{g}", f"img{g}", ("y", "x"), 1),
        ]
    lite = [{**_rec(f"{g}", "lite", f"q{g}", f"img{g}", ("x", "y")), "id": f"lite-{g}"} for g in range(0, 40, 2)]
    for r in lite:
        r["answer"] = {"label": 1, "text": "B", "all": ["B"]}  # differs from MMBench's copy: not an exact duplicate
    _write(tmp_path, "mmb", "dev", mmb)
    _write(tmp_path, "lite", "lite", lite)
    _write(tmp_path, "ev", "validation", [_rec(0, "ev", "other", "imgX")])
    out, stats = merge(MERGE_CFG, seed=0, root=tmp_path)
    side = {}
    for part, recs in out.items():
        for r in recs:
            side.setdefault(r["question"], set()).add(part)
    assert all(len(s) == 1 for s in side.values())  # no group straddles
    held_q = {r["question"] for r in out["heldout"]}
    assert held_q and not any(r["question"] in held_q for r in out["train"])
    assert all(r["dataset"] == "mmb" for r in out["heldout"])
    assert stats["dropped_in_heldout_groups"] == sum(1 for r in lite if r["question"] in held_q)
    assert stats["overlap"]["ev/validation"] == 0


def test_merge_refuses_overlap_with_evaluation_set(tmp_path):
    _write(tmp_path, "mmb", "dev", [_rec(i, "mmb", f"q{i}", f"img{i}") for i in range(20)])
    _write(tmp_path, "lite", "lite", [])
    _write(tmp_path, "ev", "validation", [_rec(i, "ev", f"q{i}", f"img{i}") for i in range(20)])
    with pytest.raises(VovnetError, match=r"training records overlap evaluation set ev/validation"):
        merge(MERGE_CFG, seed=0, root=tmp_path)
    out, stats = merge({**MERGE_CFG, "allow_overlap": True}, seed=0, root=tmp_path)
    assert stats["overlap"]["ev/validation"] == len(out["train"]) > 0


def test_merge_drops_exact_duplicates(tmp_path):
    recs = [_rec(i, "mmb", f"q{i}", f"img{i}") for i in range(10)]
    _write(tmp_path, "mmb", "dev", recs)
    _write(tmp_path, "lite", "lite", [{**r, "id": "lite-" + r["id"], "dataset": "lite"} for r in recs[:4]])
    _write(tmp_path, "ev", "validation", [])
    out, stats = merge(MERGE_CFG, seed=0, root=tmp_path)
    assert stats["duplicates_dropped"] == 4
    assert sum(len(v) for v in out.values()) == 10


def test_store_reads_are_safe_in_forked_dataloader_workers(tmp_path):
    """A store opened in the parent and inherited by forked workers must not interleave reads."""
    import hashlib

    from torch.utils.data import DataLoader, Dataset

    from vovnet.data.image_store import ImageStoreWriter

    w = ImageStoreWriter(tmp_path)
    shas = []
    for i in range(40):
        data = jpeg_bytes(colour=(i * 6, 100, 50), size=(512, 512), seed=i) * 20  # large reads widen the race
        sha = hashlib.sha256(data).hexdigest()
        w.add(data, {"sha256": sha, "format": "jpeg", "width": 64, "height": 64})
        shas.append(sha)
    w.close()
    store = ImageStore(tmp_path)
    store.read(shas[0])  # the parent opens the file before the workers fork

    class Reads(Dataset):
        def __len__(self):
            return 4000

        def __getitem__(self, i):
            sha = shas[i % len(shas)]
            return hashlib.sha256(store.read(sha)).hexdigest() == sha

    assert all(ok for batch in DataLoader(Reads(), batch_size=8, num_workers=2) for ok in batch)
