"""Generates tests/bad_inputs/cases/: one folder per bad input, in the real raw formats, each with
expect.json (what the pipeline must do: a named error or a counted reject with a reason).

    python tests/bad_inputs/make_corpus.py
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

from vovnet.data.mmbench_layout import TSV_COLUMNS

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
COLS = list(TSV_COLUMNS)


def jpeg(colour=(200, 20, 20), size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def png(size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def row(index, **kw):
    r = {
        "index": index,
        "question": f"Question {index}?",
        "hint": "",
        "A": "x",
        "B": "y",
        "C": "z",
        "D": "w",
        "answer": "A",
        "category": "c",
        "image": b64(jpeg((index * 40 % 255, 10, 10))),
        "source": "s",
        "l2-category": "l2",
        "comment": "",
        "split": "dev",
    }
    r.update(kw)
    return r


def tsv_text(rows, cols=COLS, newline="\n", quoting=csv.QUOTE_MINIMAL) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator=newline, quoting=quoting)
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return buf.getvalue()


def case(name: str, expect: dict, files: dict[str, bytes | str], outside: dict[str, bytes] | None = None) -> None:
    """files go under raw/; `outside` files go next to it (for links and paths that try to reach them)."""
    d = CASES / name
    (d / "raw").mkdir(parents=True)
    for rel, content in [(f"raw/{k}", v) for k, v in files.items()] + [
        (f"outside/{k}", v) for k, v in (outside or {}).items()
    ]:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    (d / "expect.json").write_text(json.dumps(expect, indent=1, sort_keys=True) + "\n")


def mmb(name, rows, expect, **kw):
    case(name, {"adapter": "mmbench", "splits": ["dev"], **expect}, {"MMBench_DEV_EN.tsv": tsv_text(rows, **kw)})


def hf(name, adapter, rows, features, expect, config=None, split="validation", extra=None, outside=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow, not Dataset.to_parquet: that would embed (or fail on) the files image cells point at.
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=features.arrow_schema), buf)
    files = {f"{config or 'data'}/{split}-00000-of-00001.parquet": buf.getvalue(), **(extra or {})}
    if config:
        files["README.md"] = (
            f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: {split}\n"
            f"    path: {config}/{split}-*\n---\n"
        )
    case(name, {"adapter": adapter, "splits": [split], **expect}, files, outside)


def mmmu_features():
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "options": datasets.Value("string"),
            **{f"image_{k}": datasets.Image() for k in range(1, 8)},
            "answer": datasets.Value("string"),
            "question_type": datasets.Value("string"),
        }
    )


def mmmu_row(**kw):
    r = {
        "id": "validation_Art_1",
        "question": "<image 1> Which?",
        "options": "['a', 'b']",
        "answer": "A",
        "question_type": "multiple-choice",
        **{f"image_{k}": None for k in range(1, 8)},
    }
    r["image_1"] = {"bytes": jpeg(), "path": None}
    r.update(kw)
    return r


def textvqa_features():
    import datasets

    return datasets.Features(
        {
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
            "answers": datasets.Sequence(datasets.Value("string")),
        }
    )


def llava(name, items, expect, images=("a.jpg",), raw_json=None, outside=None):
    files = {"llava.json": raw_json if raw_json is not None else json.dumps(items)}
    for im in images:
        files[f"images/{im}"] = jpeg()
    case(name, {"adapter": "llava", "splits": ["train"], "image_root": "raw/images", **expect}, files, outside)


def conv(i, image):
    return {
        "id": str(i),
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}],
    }


def rej(match, field=None):
    return {"kind": "reject", "match": match, **({"field": field} if field else {})}


def err(match):
    return {"kind": "error", "match": match}


def build() -> None:
    shutil.rmtree(CASES, ignore_errors=True)
    good = jpeg()
    mmb("corrupt_jpeg", [row(1), row(2, image=b64(good[:20] + b"\x00garbage" * 40))], rej("undecodable image", "image"))
    mmb("truncated_jpeg", [row(1), row(2, image=b64(good[: len(good) // 2]))], rej("undecodable image", "image"))
    mmb("truncated_png", [row(1), row(2, image=b64(png((64, 64))[:60]))], rej("undecodable image", "image"))
    mmb(
        "non_image_base64",
        [row(1), row(2, image=b64(b"just some text, not an image " * 4))],
        rej("undecodable image", "image"),
    )
    mmb(
        "decompression_bomb",
        [row(1), row(2, image=b64(png((2000, 2000))))],
        {**rej("image too large", "image"), "max_image_pixels": 1_000_000},
    )
    mmb("invalid_base64_chars", [row(1), row(2, image="@@@@" + b64(good)[4:])], rej("invalid base64", "image"))
    wrapped = "\n".join(b64(good)[i : i + 76] for i in range(0, len(b64(good)), 76))
    mmb("wrapped_base64_ok", [row(1, image=wrapped)], {"kind": "ok", "records": 1})
    mmb("image_ref_missing_index", [row(1), row(1_000_002, image="2")], rej("refers to index 2", "image"))
    mmb(
        "missing_answer_column",
        [row(1)],
        err(r"missing required column\(s\) answer"),
        cols=[c for c in COLS if c != "answer"],
    )
    mmb(
        "missing_question_column",
        [row(1)],
        err(r"missing required column\(s\) question"),
        cols=[c for c in COLS if c != "question"],
    )
    extra = tsv_text([row(1)]) + "\t".join(str(v) for v in row(2).values()) + "\tEXTRA\n"
    case(
        "row_more_fields_than_header",
        {"adapter": "mmbench", "splits": ["dev"], **rej("15 fields, header has 14", "row")},
        {"MMBench_DEV_EN.tsv": extra},
    )
    # A requested split with no records stops normalize, naming the file, the rows read and the reject reasons.
    all_extra = tsv_text([]) + "".join("\t".join(str(v) for v in row(i).values()) + "\tEXTRA\n" for i in (1, 2))
    case(
        "every_row_rejected",
        {
            "adapter": "mmbench",
            "splits": ["dev"],
            **err(
                r"MMBench_DEV_EN\.tsv: split 'dev' yields no records: 2 rows read, 2 rejected "
                r"\(2 row has N fields, header has N\)$"
            ),
        },
        {"MMBench_DEV_EN.tsv": all_extra},
    )
    mmb("header_only_tsv", [], err(r"MMBench_DEV_EN\.tsv: split 'dev' yields no records: 0 rows read, 0 rejected$"))
    case(
        "non_utf8",
        {"adapter": "mmbench", "splits": ["dev"], **err("not valid UTF-8")},
        {"MMBench_DEV_EN.tsv": tsv_text([row(1)]).encode("utf-8").replace(b"Question 1", b"Question \xff1")},
    )
    case(
        "bom_ok",
        {"adapter": "mmbench", "splits": ["dev"], "kind": "ok", "records": 1},
        {"MMBench_DEV_EN.tsv": "\ufeff" + tsv_text([row(1)])},
    )
    mmb("crlf_ok", [row(1), row(2)], {"kind": "ok", "records": 2}, newline="\r\n")
    mmb("answer_not_in_options", [row(1), row(2, answer="F")], rej("not one of the options", "answer"))
    mmb("empty_options_row", [row(1), row(2, A="", B="", C="", D="")], rej("empty options row", "A"))
    mmb("empty_question", [row(1), row(2, question="")], rej("empty question", "question"))
    mmb("duplicate_ids", [row(1), row(1, question="Other?")], rej("duplicate id 1", "id"))
    case("empty_file", {"adapter": "mmbench", "splits": ["dev"], **err("empty file")}, {"MMBench_DEV_EN.tsv": ""})
    hf(
        "mmmu_options_not_literal",
        "mmmu",
        [mmmu_row(), mmmu_row(id="validation_Art_2", options="a, b")],
        mmmu_features(),
        rej("not a literal list", "options"),
        config="Art",
    )
    hf(
        "mmmu_options_malicious",
        "mmmu",
        [mmmu_row(), mmmu_row(id="validation_Art_2", options="__import__('os').system('touch /tmp/vovnet_pwned')")],
        mmmu_features(),
        {**rej("not a literal list", "options"), "sentinel": "/tmp/vovnet_pwned"},
        config="Art",
    )
    hf(
        "mmmu_image_9_of_2",
        "mmmu",
        [
            mmmu_row(),
            mmmu_row(
                id="validation_Art_2", question="<image 9> and <image 1>?", image_2={"bytes": jpeg(), "path": None}
            ),
        ],
        mmmu_features(),
        rej("image_9 is referenced but empty", "image_9"),
        config="Art",
    )
    img = {"bytes": jpeg(), "path": None}
    hf(
        "textvqa_fewer_than_10_answers",
        "textvqa",
        [
            {"question_id": 1, "question": "q?", "image": img, "answers": ["a"] * 10},
            {"question_id": 2, "question": "q?", "image": img, "answers": ["a"] * 4},
        ],
        textvqa_features(),
        rej("expected 10 human answers, got 4", "answers"),
    )
    hf(
        "textvqa_zero_byte_image",
        "textvqa",
        [
            {"question_id": 1, "question": "q?", "image": img, "answers": ["a"] * 10},
            {"question_id": 2, "question": "q?", "image": {"bytes": b"", "path": None}, "answers": ["a"] * 10},
        ],
        textvqa_features(),
        rej("empty image", "image"),
    )
    import datasets

    hf(
        "parquet_wrong_schema",
        "textvqa",
        [{"q": "x"}],
        datasets.Features({"q": datasets.Value("string")}),
        err(r"missing required column\(s\) question_id, question, image, answers"),
    )
    llava("llava_dotdot", [conv(1, "a.jpg"), conv(2, "../../etc/passwd")], rej("escapes its root", "image"))
    llava("llava_absolute", [conv(1, "a.jpg"), conv(2, "/etc/passwd")], rej("escapes its root", "image"))
    llava("llava_missing_image", [conv(1, "a.jpg"), conv(2, "b.jpg")], err(r"image 'b.jpg' not found under any root"))
    llava(
        "llava_missing_image_reject",
        [conv(1, "a.jpg"), conv(2, "b.jpg")],
        {**rej("not found under any root", "image"), "on_missing_image": "reject"},
    )
    llava("json_not_a_list", None, err("expected a JSON list"), raw_json='{"id": 1}')
    llava("json_invalid", None, err("invalid JSON"), raw_json='[{"id": 1,')
    case(
        "params_unknown_adapter",
        {
            "kind": "params_error",
            "match": r"datasets\.mine\.adapter: must be .*got 'coco'$",
            "params": "datasets:\n  mine:\n    adapter: coco\n    source: x\n",
        },
        {},
    )
    case(
        "params_negative_max_samples",
        {
            "kind": "params_error",
            "match": "max_samples: must be >= 0",
            "params": "datasets:\n  mmmu:\n    source: x\n    max_samples: -5\n",
        },
        {},
    )
    case(
        "model_dir_without_weights",
        {"kind": "model_error", "match": r"missing weights \(\*\.safetensors\)"},
        {"config.json": "{}", "tokenizer.json": "{}", "preprocessor_config.json": "{}"},
    )
    from round_two import build_round_two

    build_round_two(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(build())
