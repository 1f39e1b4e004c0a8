import json

import pytest
from conftest import b64, ds_cfg, jpeg_bytes, mmb_row, normalize_dataset, write_tsv
from helpers import LIMIT

from vovnet import VovnetError


def run(tmp_path, rows=None, tsv_text=None, name="mmbench", split="dev", **cfg_kw):
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if tsv_text is not None:
        (raw / f"MMBench_{split.upper()}_EN.tsv").write_bytes(tsv_text)
    else:
        write_tsv(raw / f"MMBench_{split.upper()}_EN.tsv", rows)
    out = tmp_path / "out"
    stats = normalize_dataset(
        name,
        ds_cfg(name, "mmbench", splits=[split], **cfg_kw),
        raw,
        out,
        seed=0,
        max_image_pixels=cfg_kw.pop("limit", LIMIT) if "limit" in cfg_kw else LIMIT,
    )
    recs = [json.loads(x) for x in (out / f"{name}_{split}.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    return recs, rejects, stats


def test_circular_copies_share_one_image_and_group(tmp_path):
    rows = [
        mmb_row(1, answer="B"),
        mmb_row(1_000_001, answer="A", image="1", options=("y", "z", "w", "x")),
        mmb_row(2, answer="C", options=("p", "q", "r")),
    ]
    recs, rejects, stats = run(tmp_path, rows)
    assert rejects == [] and len(recs) == 3
    by_index = {r["meta"]["index"]: r for r in recs}
    assert by_index[1]["images"] == by_index[1_000_001]["images"]
    assert by_index[1_000_001]["meta"]["circular_group"] == 1 and by_index[1_000_001]["meta"]["circular_rotation"] == 1
    assert by_index[2]["choices"] == ["p", "q", "r"] and by_index[2]["answer"]["label"] == 2
    assert stats["images_stored"] == 2
    assert [r["id"] for r in recs] == sorted(r["id"] for r in recs)


def test_forward_reference_resolves_and_missing_reference_rejected(tmp_path):
    rows = [mmb_row(1_000_005, image="5"), mmb_row(5), mmb_row(1_000_007, image="7")]
    recs, rejects, _ = run(tmp_path, rows)
    assert len(recs) == 2
    assert len(rejects) == 1 and "refers to index 7" in rejects[0]["reason"] and rejects[0]["row"] == 2


def test_wrapped_base64_decodes_and_invalid_base64_rejected(tmp_path):
    data = b64(jpeg_bytes())
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    rows = [mmb_row(1, image=wrapped), mmb_row(2, image="!!" + "A" * 100)]
    recs, rejects, stats = run(tmp_path, rows)
    assert len(recs) == 1 and recs[0]["images"][0]["format"] == "jpeg"
    assert rejects[0]["field"] == "image" and "invalid base64" in rejects[0]["reason"]
    assert stats["reject_reasons"] == {"invalid base64": 1}


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"not an image at all" * 10, "undecodable image"),
        (jpeg_bytes()[:200], "undecodable image"),
        (b"", "empty image"),
    ],
)
def test_bad_image_bytes_rejected(tmp_path, payload, reason):
    rows = [mmb_row(1), mmb_row(2, image=b64(payload) if payload else "A" * 70)]
    recs, rejects, _ = run(tmp_path, rows)
    assert len(recs) == 1 and len(rejects) == 1
    assert reason in rejects[0]["reason"] or "invalid base64" in rejects[0]["reason"]


def test_decompression_bomb_rejected_by_params_limit(tmp_path):
    raw = tmp_path / "raw"
    write_tsv(raw / "MMBench_DEV_EN.tsv", [mmb_row(1, image=b64(jpeg_bytes(size=(200, 200)))), mmb_row(2)])
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), raw, tmp_path / "out", seed=0, max_image_pixels=10_000
    )
    rej = json.loads((tmp_path / "out" / "rejects.jsonl").read_text())
    assert "too large" in rej["reason"] and rej["row"] == 0 and stats["splits"]["dev"]["records"] == 1


def test_row_level_problems_are_counted_rejects(tmp_path):
    rows = [
        mmb_row(1, answer="E"),
        mmb_row(2, options=("", "", "", "")),
        mmb_row(3, question=""),
        mmb_row(4),
        mmb_row(4, question="different"),
    ]
    recs, rejects, stats = run(tmp_path, rows)
    reasons = {r["row"]: r["reason"] for r in rejects}
    assert "not one of the options" in reasons[0]
    assert "empty options" in reasons[1]
    assert "empty question" in reasons[2]
    assert "duplicate id 4" in reasons[4]
    assert len(recs) == 1 and stats["rejects"] == 4


def test_missing_required_column_is_one_line_error(tmp_path):
    rows = [mmb_row(1)]
    cols = [c for c in ["index", "question", "hint", "A", "B", "C", "D", "category", "image"]]
    write_tsv(tmp_path / "raw" / "MMBench_DEV_EN.tsv", rows, columns=cols)
    with pytest.raises(VovnetError, match=r"missing required column\(s\) answer"):
        normalize_dataset(
            "mmbench", ds_cfg("mmbench"), tmp_path / "raw", tmp_path / "out", seed=0, max_image_pixels=LIMIT
        )
    assert not (tmp_path / "out").exists()  # nothing partial


def test_test_split_without_answer_column(tmp_path):
    rows = [mmb_row(1)]
    cols = [c for c in ["index", "question", "hint", "A", "B", "C", "D", "category", "image"]]
    write_tsv(tmp_path / "raw" / "MMBench_TEST_EN.tsv", rows, columns=cols)
    normalize_dataset(
        "mmbench",
        ds_cfg("mmbench", splits=["test"]),
        tmp_path / "raw",
        tmp_path / "out",
        seed=0,
        max_image_pixels=LIMIT,
    )
    rec = json.loads((tmp_path / "out" / "mmbench_test.jsonl").read_text())
    assert rec["answer"] == {"label": None, "text": None, "all": []}


def test_extra_fields_bom_crlf_and_non_utf8(tmp_path):
    import csv
    import io

    from conftest import MMB_COLUMNS

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\r\n")
    w.writerow(MMB_COLUMNS)
    good = mmb_row(1)
    w.writerow([good[c] for c in MMB_COLUMNS])
    w.writerow([mmb_row(2)[c] for c in MMB_COLUMNS] + ["extra"])
    recs, rejects, _ = run(tmp_path, tsv_text=("\ufeff" + buf.getvalue()).encode("utf-8"))
    assert len(recs) == 1 and recs[0]["meta"]["index"] == 1
    assert "15 fields, header has 14" in rejects[0]["reason"]
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(VovnetError, match="not valid UTF-8"):
        run(bad, tsv_text=buf.getvalue().encode("utf-8").replace(b"Q?", b"Q\xff?"))


def test_rerun_is_byte_identical_and_ids_stable(tmp_path):
    rows = [mmb_row(i, answer="ABCD"[i % 4]) for i in range(1, 8)]
    run(tmp_path / "a", rows)
    run(tmp_path / "b", rows)
    for f in ("mmbench_dev.jsonl", "images.tar", "images.index.json", "rejects.jsonl"):
        assert (tmp_path / "a" / "out" / f).read_bytes() == (tmp_path / "b" / "out" / f).read_bytes()


def test_max_samples_is_seeded_and_keeps_circular_groups(tmp_path):
    rows = []
    for i in range(1, 11):
        rows += [mmb_row(i), mmb_row(i + 1_000_000, image=str(i), options=("y", "z", "w", "x"), answer="D")]
    recs, _, _ = run(tmp_path / "a", rows, max_samples=3)
    recs2, _, _ = run(tmp_path / "b", list(reversed(rows)), max_samples=3)
    groups = {r["meta"]["circular_group"] for r in recs}
    assert len(groups) == 3 and len(recs) == 6
    assert groups == {r["meta"]["circular_group"] for r in recs2}


def test_workers_give_identical_output(tmp_path):
    rows = [mmb_row(i) for i in range(1, 30)]
    raw = tmp_path / "raw"
    write_tsv(raw / "MMBench_DEV_EN.tsv", rows)
    for w in (1, 2):
        normalize_dataset(
            "mmbench", ds_cfg("mmbench"), raw, tmp_path / f"o{w}", seed=0, max_image_pixels=LIMIT, workers=w
        )
    for f in ("mmbench_dev.jsonl", "images.tar"):
        assert (tmp_path / "o1" / f).read_bytes() == (tmp_path / "o2" / f).read_bytes()
