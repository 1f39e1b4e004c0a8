"""The MMBench raw layout: VLMEvalKit TSV (base64 images, circular copies) or the HF layouts
(lmms-lab/MMBench_EN, lmms-lab/MMBench, LMMs-Eval-Lite's mmbench_en_dev).

Shared by two tasks, so it lives below both: vovnet/tasks/mmbench and vovnet/tasks/mmbench_lite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.overlap import CIRCULAR_STRIDE  # circular copies: index = original + k * 1e6
from vovnet.data.records import (
    LETTERS,
    ImageRef,
    Reject,
    Row,
    clean_text,
    letter_to_label,
    make_record,
    parse_int,
    text_field,
)
from vovnet.data.tsv import TsvRowError, read_tsv

TSV_COLUMNS = (  # VLMEvalKit's MMBench TSV header, in its order
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
)
REF_MAX_CHARS = 64  # an image cell this short is the index of the row whose image it reuses


LANG_TOKENS = {"en", "cn"}


def _split_column(path: Path) -> str | None:
    """The `split` cell of a TSV's first data row (VLMEvalKit files hold one split each)."""
    rows = read_tsv(path)
    try:
        for _, cells in rows:
            return clean_text(cells.get("split")) if isinstance(cells, dict) else None
        return None
    finally:
        rows.close()


def find_tsv(raw_dir: Path, cfg: dict, split: str) -> Path | None:
    """The TSV that serves `split`: named for it, or (name silent) whose `split` column says it."""
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return explicit
    found = sorted(raw_dir.rglob("*.tsv"))
    if not found:
        return None
    lang = cfg["lang"].lower()
    rel = {p: p.relative_to(raw_dir).as_posix() for p in found}
    tsvs = [p for p in found if not (split_files.tokens(rel[p]) & LANG_TOKENS) or lang in split_files.tokens(rel[p])]
    if not any(split_files.names_split(rel[p], split) for p in tsvs):
        silent = {p: _split_column(p) for p in tsvs if not split_files.names_any_split(rel[p])}
        by_column = [p for p, col in silent.items() if col and split_files.names_split(col, split)]
        if len(by_column) == 1:
            return by_column[0]
        # a file whose split column names another split never serves this one
        tsvs = [p for p in tsvs if silent.get(p) is None]
    return split_files.pick(raw_dir, tsvs, split, list(cfg["splits"]), f"MMBench TSV (lang {lang})", found)


def _hf_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return [explicit]
    return hf_source.split_files_of(raw_dir, hf_configs(raw_dir, cfg)[0], split, list(cfg["splits"]))


def hf_configs(raw_dir: Path, cfg: dict) -> list[str | None]:
    """The config read: `subset`, else the language (lmms-lab/MMBench has en/cn/cc; MMBench_EN has none)."""
    return [cfg["subset"] or (cfg["lang"] if cfg["lang"] in hf_source.config_names(raw_dir) else None)]


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    tsv = find_tsv(raw_dir, cfg, split)
    return [tsv] if tsv is not None else _hf_files(raw_dir, cfg, split)


def _has_answers(split: str) -> bool:
    return "test" not in split.lower()


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    """A Row, or a Row carrying `_error` (field, reason) when its index cell is unusable."""
    try:
        raw_index = text_field(cells, "index", required=True)
        index = parse_int(raw_index)
        if index is None or index < 0:
            raise Reject("index", f"not a non-negative integer ({raw_index[:40]!r})")
    except Reject as rej:
        return Row(index=i, key=f"row{i}", group=f"row{i}", fields={**cells, "_error": (rej.field, rej.reason)})
    image = cells.get("image")
    if isinstance(image, str):
        text = image.strip()
        if clean_text(text) is None:
            ref = ImageRef("image", "bytes", None)  # empty/nan/null: MMBench questions all have an image
        elif len(text) <= REF_MAX_CHARS:
            target = parse_int(text)
            ref = (
                ImageRef("image", "ref", str(target))
                if target is not None and target >= 0
                else ImageRef("image", "invalid", f"short image cell {text[:40]!r} is neither base64 nor a row index")
            )
        else:
            ref = ImageRef("image", "b64", image)
    else:
        ref = hf_image_ref("image", image, snapshot)
    return Row(index=i, key=str(index), group=str(index % CIRCULAR_STRIDE), fields=cells, images=[ref])


def release_split(cfg: dict, split: str) -> str:
    """The MMBench split a row comes from when its `split` cell is empty: Lite's config `mmbench_en_dev`
    is drawn from dev."""
    named = split_files.tokens(cfg.get("subset") or "") & {"dev", "test"}
    return named.pop() if len(named) == 1 else split


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row | TsvRowError]:
    files = source_files(raw_dir, cfg, split)
    release = release_split(cfg, split)
    if files[0].suffix.lower() == ".tsv":
        required = ("index", "question", "A", "image") + (("answer",) if _has_answers(split) else ())
        for i, cells in read_tsv(files[0], required):
            if isinstance(cells, TsvRowError):
                yield cells
                continue
            if not clean_text(cells.get("split")):
                cells["split"] = release
            yield row_from_cells(cells, i, raw_dir)
        return
    rows = hf_source.iter_rows(files, required=("index", "question", "A", "image"), where=f"split {split}")
    for i, cells in enumerate(rows):
        if "L2-category" in cells:  # lmms-lab/MMBench spells it with a capital L
            cells["l2-category"] = cells.pop("L2-category")
        if not isinstance(cells.get("split"), str) or not clean_text(cells.get("split")):
            cells["split"] = release
        yield row_from_cells(cells, i, raw_dir)


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    if row.images and row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image (empty cell)")
    choices, gap = [], None
    for letter in LETTERS:
        if letter not in f:
            break
        value = text_field(f, letter)
        if value is None:
            gap = gap or letter  # fewer options leave the trailing cells empty
            continue
        if gap:
            raise Reject(gap, f"option {gap} is empty but option {letter} is filled")
        choices.append(value)
    if not choices:
        raise Reject("A", "empty options row")
    answer = text_field(f, "answer") if _has_answers(split) else None
    if _has_answers(split) and answer is None:
        raise Reject("answer", "empty answer")
    label = letter_to_label(answer, len(choices)) if answer is not None else None
    index = int(row.key)
    meta = {
        "category": text_field(f, "category"),
        "l2_category": text_field(f, "l2-category"),
        "source": text_field(f, "source"),
        "circular_group": index % CIRCULAR_STRIDE,
        "circular_rotation": index // CIRCULAR_STRIDE,
        "index": index,
        # which MMBench release split the item comes from (Lite's rows say `dev`): the overlap key links
        # the same question across MMBench, Lite and their circular copies by it
        "family": "mmbench",
        "source_split": (text_field(f, "split") or split).lower(),
    }
    return make_record(
        dataset,
        split,
        row,
        question=text_field(f, "question"),
        hint=text_field(f, "hint"),
        choices=choices,
        label=label,
        images=images,
        meta=meta,
    )
