"""Streaming TSV reader for VLMEvalKit-style files (base64 images in cells; BOM/CRLF tolerant)."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError

csv.field_size_limit(sys.maxsize)  # image cells are megabytes of base64


class TsvRowError(ValueError):
    def __init__(self, row: int, reason: str):
        super().__init__(reason)
        self.row, self.reason = row, reason


def read_tsv(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict | TsvRowError]]:
    """Yield (data_row_index, row dict) — or a TsvRowError for a malformed row — streaming."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            header = next(reader, None)
            if header is None:
                raise VovnetError(f"{path}: empty file (no header row)")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise VovnetError(f"{path}: missing required column(s) {', '.join(missing)} (header: {', '.join(header)})")
            for i, cells in enumerate(reader):
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if len(cells) > len(header):
                    yield i, TsvRowError(i, f"row has {len(cells)} fields, header has {len(header)}")
                    continue
                cells += [""] * (len(header) - len(cells))
                yield i, dict(zip(header, cells))
        except UnicodeDecodeError as exc:
            raise VovnetError(f"{path}: not valid UTF-8 near byte {exc.start} ({exc.reason})") from None
        except csv.Error as exc:
            raise VovnetError(f"{path}: line {reader.line_num}: malformed TSV ({exc})") from None
