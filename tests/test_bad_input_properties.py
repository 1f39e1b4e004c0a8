"""Property tests (hypothesis): valid rows mutated one field at a time, in every adapter. Whatever the value,
every row read comes out as a record or a counted reject (rows in == records + rejects), reject reasons
are one stable line, and nothing but a one-line VovnetError ever escapes."""

import json
import math
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, adapter_of, ds_cfg, jpeg_bytes, mmb_row, normalize_dataset, write_tsv
from helpers import LIMIT, MMB_COLUMNS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vovnet.data.image_store import ImageStoreWriter, set_pixel_limit
from vovnet.data.normalize import SplitNormalizer, _prepare
from vovnet.io_utils import read_jsonl

JPEG = jpeg_bytes(seed=3)
TRICKY_TEXT = [
    "",
    " ",
    "nan",
    "NaN",
    "None",
    "null",
    "inf",
    "-inf",
    "1e400",
    "-1",
    "0",
    "2.5",
    "1000001",
    '"',
    '"open',
    'a"b',
    "\t",
    "\n",
    "\r\n",
    "A",
    "Z",
    "[]",
    "['a', None]",
    "<image 1>",
    "<image 9>",
    "../x.jpg",
    "/etc/hostname",
    "\x00",
    "é",
]
text_values = st.one_of(st.sampled_from(TRICKY_TEXT), st.text(max_size=30))
any_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        text_values,
        st.binary(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=11), st.dictionaries(st.sampled_from(["bytes", "path", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)
STABLE = re.compile(r"0x[0-9a-f]{6,}|object at|/tmp/|\n")


def check_rejects(path):
    for r in read_jsonl(path):
        assert isinstance(r["row"], int) and isinstance(r["field"], str) and r["reason"]
        assert not STABLE.search(r["reason"]), r["reason"]


# --- MMBench TSV: one cell of one row replaced, written as VLMEvalKit writes (quoted where needed) ---
COLS = MMB_COLUMNS


def mmb_rows():
    return [mmb_row(1), mmb_row(2, options=("p", "q")), mmb_row(1_000_001, image="1"), mmb_row(3)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(0, 3), col=st.sampled_from(COLS), value=text_values)
@example(k=0, col="index", value="0\r")
@example(k=0, col="question", value="0\x850")
def test_mmbench_tsv_cell_mutations_keep_every_row(tmp_path_factory, k, col, value):
    tmp = tmp_path_factory.mktemp("mmb")
    rows = mmb_rows()
    rows[k][col] = value
    # "\r\n" rows: Python's csv writer quotes a cell holding a lone "\r" only when "\r" is in the terminator.
    write_tsv(tmp / "raw" / "MMBench_DEV_EN.tsv", rows, newline="\r\n")
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), tmp / "raw", tmp / "out", seed=0, max_image_pixels=LIMIT
    )
    s = stats["splits"]["dev"]
    assert s["rows"] == len(rows) == s["records"] + s["rejects"]
    # read as the pipeline reads JSONL: a question may hold U+0085 or U+2028, which str.splitlines splits on
    assert len(list(read_jsonl(tmp / "out" / "mmbench_dev.jsonl"))) == s["records"]
    check_rejects(tmp / "out" / "rejects.jsonl")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(0, 3),
    col=st.sampled_from([c for c in COLS if c != "image"]),
    value=st.sampled_from(['"', '"open', '"a\tb', '"x""y']),
)
def test_mmbench_tsv_raw_quote_never_swallows_rows(tmp_path_factory, k, col, value):
    """A cell that opens a quote it never closes, written raw (no csv quoting): one reject, the rest kept."""
    tmp = tmp_path_factory.mktemp("mmbq")
    rows = mmb_rows()
    rows[k][col] = value
    lines = ["\t".join(COLS)] + ["\t".join(str(r.get(c, "")) for c in COLS) for r in rows]
    (tmp / "raw").mkdir()
    (tmp / "raw" / "MMBench_DEV_EN.tsv").write_text("\n".join(lines) + "\n")
    stats = normalize_dataset(
        "mmbench", ds_cfg("mmbench", splits=["dev"]), tmp / "raw", tmp / "out", seed=0, max_image_pixels=LIMIT
    )
    s = stats["splits"]["dev"]
    assert s["rows"] == len(rows) == s["records"] + s["rejects"]
    rejects = list(read_jsonl(tmp / "out" / "rejects.jsonl"))
    assert [r["row"] for r in rejects if "unbalanced quote" in r["reason"]] in ([], [k])
    assert s["records"] >= len(rows) - 2  # the bad row, and at most the row that reuses its image


# --- LLaVA JSON: one field of one item replaced by any JSON value ---
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text_values),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["from", "value", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
LLAVA_PATHS = [
    ("id",),
    ("image",),
    ("conversations",),
    ("conversations", 0),
    ("conversations", 0, "from"),
    ("conversations", 0, "value"),
    ("conversations", 1, "from"),
    ("conversations", 1, "value"),
    (),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(0, 2), where=st.sampled_from(LLAVA_PATHS), value=json_values)
@example(k=0, where=("conversations", 0, "value"), value="None")  # a question whose text is "None": kept
@example(k=0, where=("conversations", 1, "value"), value=None)  # a null answer: rejected, never "None"
def test_llava_field_mutations_keep_every_row(tmp_path_factory, k, where, value):
    tmp = tmp_path_factory.mktemp("llava")
    items = [
        {
            "id": str(i),
            "image": "a.jpg",
            "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": f"A{i}."}],
        }
        for i in range(3)
    ]
    if where:
        node = items[k]
        for step in where[:-1]:
            node = node[step]
        node[where[-1]] = value
    else:
        items[k] = value  # the whole record
    (tmp / "raw").mkdir()
    (tmp / "raw" / "llava.json").write_text(json.dumps(items))
    (tmp / "images").mkdir()
    (tmp / "images" / "a.jpg").write_bytes(JPEG)
    cfg = ds_cfg("llava", splits=["train"], image_root=str(tmp / "images"), on_missing_image="reject")
    stats = normalize_dataset("llava", cfg, tmp / "raw", tmp / "out", seed=0, max_image_pixels=LIMIT)
    s = stats["splits"]["train"]
    assert s["rows"] == 3 == s["records"] + s["rejects"]
    written = "None" in json.dumps(value)  # the text "None" in the data is kept as written
    for rec in read_jsonl(tmp / "out" / "llava_train.jsonl"):
        assert written or (rec["question"] != "None" and rec["answer"]["text"] != "None")  # null never stringified
        assert rec["answer"]["text"] is not None


# --- HF adapters (MMBench HF layout, MMMU, TextVQA): cells as the parquet reader hands them, one replaced ---
def hf_cells(adapter):
    img = {"bytes": JPEG, "path": None}
    if adapter == "textvqa":
        return [
            {
                "question_id": i,
                "question": "q?",
                "image": img,
                "answers": ["a"] * 10,
                "image_id": "x",
                "ocr_tokens": ["a"],
            }
            for i in range(3)
        ]
    if adapter == "mmmu":
        return [
            {
                "id": f"v_{i}",
                "question": "<image 1> Which?",
                "options": "['a', 'b']",
                "answer": "A",
                "question_type": "multiple-choice",
                "image_1": img,
                **{f"image_{n}": None for n in range(2, 8)},
            }
            for i in range(3)
        ]
    return [
        {
            "index": i,
            "question": "Q?",
            "hint": None,
            "A": "x",
            "B": "y",
            "C": None,
            "D": None,
            "answer": "B",
            "category": "c",
            "image": img,
            "l2-category": "l2",
        }
        for i in range(3)
    ]


def run_cells(adapter_name, split, cells_list, tmp):
    adapter = adapter_of({"adapter": adapter_name})
    set_pixel_limit(LIMIT)
    store = ImageStoreWriter(tmp / "store")
    norm = SplitNormalizer(adapter_name, ds_cfg(adapter_name, splits=[split]), split, adapter, store)
    for i, cells in enumerate(cells_list):
        args = (cells, i, tmp) + (("Art",) if adapter_name == "mmmu" else ())
        norm.handle(*_prepare((adapter.row_from_cells(*args), LIMIT)))
    norm.finish()
    norm.check_counts()  # raises if a row was lost or doubled
    store.close()
    return norm


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(adapter=st.sampled_from(["mmbench", "mmmu", "textvqa"]), k=st.integers(0, 2), data=st.data())
def test_hf_cell_mutations_keep_every_row(tmp_path_factory, adapter, k, data):
    tmp = tmp_path_factory.mktemp("hf")
    cells = hf_cells(adapter)
    col = data.draw(st.sampled_from(sorted(cells[k])))
    cells[k][col] = data.draw(any_values)
    split = {"mmbench": "dev", "mmmu": "validation", "textvqa": "validation"}[adapter]
    norm = run_cells(adapter, split, cells, tmp)
    assert norm.rows_read == 3 == len(norm.offsets) + len(norm.rejects)
    for r in norm.rejects:
        assert not STABLE.search(r["reason"]), r["reason"]
    norm.spool.seek(0)
    for line in norm.spool.read().decode().split("\n")[:-1]:
        rec = json.loads(line)
        assert "None" not in (rec["question"], rec["answer"]["text"]) and "None" not in rec["answer"]["all"]
        assert rec["images"], "every benchmark row here has an image"
        assert all(isinstance(c, str) for c in rec["choices"] or [])
        assert not (isinstance(rec["answer"]["label"], float) and math.isnan(rec["answer"]["label"]))


def test_a_bug_is_not_swallowed(tmp_path, monkeypatch):
    """The boundary catches input errors by type: a programming error keeps its own type and traceback."""
    from vovnet.tasks.llava import adapter as llava

    def broken(*args):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(llava, "resolve_in_roots", broken)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "llava.json").write_text(json.dumps([{"id": "1", "image": "a.jpg", "conversations": []}]))
    with pytest.raises(KeyError):
        normalize_dataset(
            "llava",
            ds_cfg("llava", splits=["train"]),
            tmp_path / "raw",
            tmp_path / "out",
            seed=0,
            max_image_pixels=LIMIT,
        )
    assert not (tmp_path / "out").exists()


def test_count_check_catches_a_lost_row(tmp_path):
    norm = run_cells("textvqa", "validation", hf_cells("textvqa"), tmp_path)
    norm.rows_read += 1  # as if a row had vanished between reading and writing
    with pytest.raises(AssertionError, match="4 rows read but 3 records"):
        norm.check_counts()


def test_cli_prints_a_vovnet_error_as_one_line():
    code = (
        "from vovnet import cli, VovnetError\n"
        "def main():\n    raise VovnetError('first line\\nsecond line')\ncli.run(main)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["error: first line second line"]


SEED_IMAGES = {}


def seed_image(fmt):
    if fmt not in SEED_IMAGES:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (10, 200, 30)).save(buf, format=fmt)
        SEED_IMAGES[fmt] = buf.getvalue()
    return SEED_IMAGES[fmt]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns on corrupt TIFF tags before failing
@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(["JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP"]),
    cut=st.integers(0, 2000),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
)
def test_mutated_image_bytes_are_a_reject_never_a_crash(fmt, cut, edits):
    """Pillow errors on broken images of every stored format become ImageError (a reject), with a stable reason."""
    from vovnet.data.image_store import ImageError, inspect_image

    data = bytearray(seed_image(fmt))
    for pos, value in edits:
        data[pos % len(data)] = value
    data = bytes(data[: max(1, len(data) - cut % len(data))])
    set_pixel_limit(LIMIT)
    try:
        meta = inspect_image(data)
        assert meta["width"] > 0 and meta["height"] > 0
    except ImageError as exc:
        assert not STABLE.search(str(exc)), str(exc)


# No lone "\r": Python's csv writer (and so pandas) leaves it unquoted with a "\n" terminator, which no reader
# can tell from a line break.
cell_text = st.lists(st.sampled_from(["a", "1", " ", '"', "\t", "\n", "\r\n", "é", "nan"]), max_size=6).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cell_text, min_size=len(COLS), max_size=len(COLS)), min_size=1, max_size=4),
    newline=st.sampled_from(["\n", "\r\n"]),
    quote_all=st.booleans(),
)
def test_tsv_reader_reads_back_what_a_writer_wrote(tmp_path_factory, rows, newline, quote_all):
    """Any table written as VLMEvalKit writes them (pandas to_csv, QUOTE_ALL today, QUOTE_MINIMAL before;
    tabs, line breaks and quotes inside cells) reads back cell for cell, one row per row written."""
    import csv

    from vovnet.data.tsv import read_tsv

    p = tmp_path_factory.mktemp("rt") / "x.tsv"
    with open(p, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(
            fh, delimiter="\t", lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        )
        w.writerow(COLS)
        w.writerows(rows)
    got = [cells for _, cells in read_tsv(p)]
    expected = [dict(zip(COLS, r)) for r in rows]
    assert got == expected
