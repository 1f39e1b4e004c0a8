"""Streaming TSV reader for VLMEvalKit-style files (base64 images in cells; BOM/CRLF tolerant).

Quoting rule (what VLMEvalKit's `dump` writes with pandas `to_csv(sep='\\t', quoting=csv.QUOTE_ALL)` —
QUOTE_MINIMAL in older releases — and `read_csv` reads): a cell is wrapped in `"` (every cell, or only one
holding a tab, a line break or a `"`), with inner quotes doubled; a `"` anywhere but at the start of a
cell is literal. So a quoted cell may span lines, and a cell whose opening quote is never closed would
swallow the rows after it. While a quoted cell is open, a line that does not close it but is itself a
complete row with the header's field count is taken as the start of a new row: the row that opened the
quote is a reject and reading resumes at that line. (A cell would have to hold the header's count of tabs
on one of its inner lines to be misread.) Every data row read comes out as one row or one reject.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError

csv.field_size_limit(sys.maxsize)  # image cells are megabytes of base64


class TsvRowError(ValueError):
    """A data row that cannot be split into the header's fields: a counted reject."""

    def __init__(self, row: int, reason: str, field: str = "row"):
        super().__init__(reason)
        self.row, self.reason, self.field = row, reason, field


def _quote_open(text: str, inside: bool = False) -> bool:
    """True when `text` ends inside a quoted cell (same rules as csv's default dialect); `inside`: it
    starts inside one (a continuation line)."""
    i, n = 0, len(text)
    while True:  # i is at the start of a cell, or inside a quoted one
        if inside or (i < n and text[i] == '"'):
            j = i if inside else i + 1
            inside = False
            while True:
                k = text.find('"', j)
                if k < 0:
                    return True
                if k + 1 < n and text[k + 1] == '"':  # doubled quote: a literal one
                    j = k + 2
                    continue
                break
            tab = text.find("\t", k + 1)
        else:
            tab = text.find("\t", i)
        if tab < 0:
            return False
        i = tab + 1


def _strip_eol(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def _cells(text: str) -> list[str]:
    if '"' not in text:
        return text.split("\t")
    return next(csv.reader([text], delimiter="\t"))


def _read_header(path: Path, line: str | None, required: tuple[str, ...]) -> list[str]:
    if line is None:
        raise VovnetError(f"{path}: empty file (no header row)")
    text = _strip_eol(line)
    if _quote_open(text):
        raise VovnetError(f"{path}: line 1: the header row opens a quote it never closes")
    header = [h.strip() for h in _cells(text)]
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise VovnetError(
                f"{path}: duplicate column name {col!r} in the header (which one holds the data is ambiguous)"
            )
        seen.add(col)
    missing = [c for c in required if c not in header]
    if missing:
        raise VovnetError(f"{path}: missing required column(s) {', '.join(missing)} (header: {', '.join(header)})")
    return header


def _logical_rows(lines: Iterator[tuple[int, str]], width: int) -> Iterator[tuple[int, str | None]]:
    """(first line number, row text) per data row; text None for a row whose quote never closes."""
    pending: list[str] = []
    start = 0
    for lineno, line in lines:
        if pending:
            text = _strip_eol(line)
            if not _quote_open(text, inside=True):  # the quote closes on this line: one row spanning lines
                pending.append(line)
                joined, pending = _strip_eol("".join(pending)), []
                yield start, joined
                continue
            if not (text and not _quote_open(text) and len(_cells(text)) == width):
                pending.append(line)  # still inside the quoted cell
                continue
            pending = []
            yield start, None  # runaway quote: that row is rejected, this line starts the next one
        text = _strip_eol(line)
        if '"' in text and _quote_open(text):
            pending, start = [line], lineno
            continue
        yield lineno, text
    if pending:
        yield start, None


def read_tsv(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict | TsvRowError]]:
    """Yield (data_row_index, row dict) — or a TsvRowError for a malformed row — streaming.

    Blank lines are not rows. A row with fewer or more fields than the header is a reject with both counts.
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        try:
            numbered = enumerate(fh, 1)
            first = next(numbered, (1, None))[1]
            header = _read_header(path, first, required)
            width = len(header)
            i = 0
            for lineno, text in _logical_rows(numbered, width):
                if text is not None and "\t" not in text and not text.strip():
                    continue  # a blank line is not a row (a row of empty cells still has its tabs)
                if text is None:
                    yield (
                        i,
                        TsvRowError(
                            i,
                            "unbalanced quote: a quoted cell opens and never closes before the "
                            f"next row (line {lineno})",
                        ),
                    )
                else:
                    cells = _cells(text)
                    if len(cells) != width:
                        yield i, TsvRowError(i, f"row has {len(cells)} fields, header has {width} (line {lineno})")
                    else:
                        yield i, dict(zip(header, cells))
                i += 1
        except UnicodeDecodeError as exc:
            raise VovnetError(f"{path}: not valid UTF-8 near byte {exc.start} ({exc.reason})") from None
        except csv.Error as exc:
            raise VovnetError(f"{path}: malformed TSV ({exc})") from None
