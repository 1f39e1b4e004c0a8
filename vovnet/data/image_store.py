"""Content-addressed image store: one uncompressed tar per dataset plus a JSON index.

DVC is slow on directories of many small files (100k files: `dvc add` ~61 s, fresh pull ~54 s), so a
dataset's images live in `images.tar` (members `<sha256>.<ext>`, original encoded bytes, deterministic
headers) with `images.index.json` giving each image's byte offset for O(1) random reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import struct
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vovnet import VovnetError

TAR_NAME = "images.tar"
INDEX_NAME = "images.index.json"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "MPO": "jpg"}


class ImageError(ValueError):
    """An image payload that cannot be used; the message is the reject reason."""


def set_pixel_limit(max_pixels: int) -> None:
    """Pillow's decompression-bomb guard, set from params (never disabled)."""
    if not max_pixels or max_pixels <= 0:
        raise VovnetError("params.yaml: normalize.max_image_pixels must be a positive number")
    Image.MAX_IMAGE_PIXELS = int(max_pixels)
    # inspect_image enforces the limit itself (a counted reject); Pillow's warning would only be noise.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Some exporters wrap base64 at 76 columns; whitespace is not data, anything else invalid is.
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("invalid base64") from None


def inspect_image(data: bytes, max_pixels: int | None = None) -> dict:
    """Verify the bytes decode fully as an image; return {format, width, height}. Raises ImageError."""
    if not data:
        raise ImageError("empty image (0 bytes)")
    limit = max_pixels or Image.MAX_IMAGE_PIXELS
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if limit and width * height > limit:
            raise ImageError(f"image too large: {width}x{height} pixels exceeds limit {limit}")
        fmt = img.format or ""
        if fmt not in EXTENSIONS:
            raise ImageError(f"unsupported image format {fmt or 'unknown'}")
        if fmt == "JPEG":
            # DCT-domain downscale: the whole bitstream is still decoded (truncation is caught)
            # at a fraction of the cost of a full-size decode.
            img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("undecodable image: not a known image format") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        # How Pillow's parsers report malformed files (struct.error: short headers in some plugins).
        detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"undecodable image: {detail}") from None
    return {"format": fmt.lower() if fmt != "MPO" else "jpeg", "width": width, "height": height}


def describe(data: bytes, max_pixels: int | None = None) -> dict:
    meta = inspect_image(data, max_pixels)
    return {"sha256": hashlib.sha256(data).hexdigest(), **meta}


BLOCK = 512


def _ustar_header(name: str, size: int) -> bytes:
    """A POSIX ustar member header (regular file, mode 644, uid/gid 0, mtime 0): deterministic bytes.

    Written by hand because tarfile's header builder dominated the store's cost (~0.3 ms per image)."""

    def octal(value: int, width: int) -> bytes:
        return f"{value:0{width - 1}o}".encode() + b"\0"

    raw = name.encode()
    if len(raw) > 100:
        raise ValueError(f"tar member name too long: {name}")
    head = (
        raw.ljust(100, b"\0")
        + octal(0o644, 8)
        + octal(0, 8)
        + octal(0, 8)
        + octal(size, 12)
        + octal(0, 12)
        + b" " * 8
        + b"0"
        + b"\0" * 100
        + b"ustar\x0000"
        + b"\0" * 32
        + b"\0" * 32
        + octal(0, 8)
        + octal(0, 8)
        + b"\0" * 155
    )
    head = head.ljust(BLOCK, b"\0")
    checksum = f"{sum(head):06o}\0 ".encode()
    return head[:148] + checksum + head[156:]


def _ext(fmt: str) -> str:
    return EXTENSIONS.get(fmt.upper(), fmt.lower())


class ImageStoreWriter:
    """Append-only writer; images are deduplicated by sha256 and written in first-seen order."""

    def __init__(self, folder: str | os.PathLike, keep_bytes: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep_bytes = keep_bytes
        self.index: dict[str, dict] = {}
        self._fh = open(self.folder / TAR_NAME, "wb") if keep_bytes else None

    def add(self, data: bytes, meta: dict) -> None:
        sha = meta["sha256"]
        if sha in self.index:
            return
        entry = {"format": meta["format"], "width": meta["width"], "height": meta["height"], "size": len(data)}
        if self._fh is not None:
            self._fh.write(_ustar_header(f"{sha}.{_ext(meta['format'])}", len(data)))
            entry["offset"] = self._fh.tell()
            self._fh.write(data)
            self._fh.write(b"\0" * (-len(data) % BLOCK))
        self.index[sha] = entry

    def close(self) -> None:
        if self._fh is not None:
            self._fh.write(b"\0" * (2 * BLOCK))  # end-of-archive marker
            self._fh.close()
        with open(self.folder / INDEX_NAME, "w", encoding="utf-8") as fh:
            json.dump({"bytes_stored": self.keep_bytes, "images": self.index}, fh, sort_keys=True, indent=0)
            fh.write("\n")


class ImageStore:
    """Random-access reader over a dataset's store."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        index_path = self.folder / INDEX_NAME
        if not index_path.exists():
            raise VovnetError(f"{index_path}: image index not found (run `dvc repro` or `dvc pull`)")
        data = json.loads(index_path.read_text(encoding="utf-8"))
        self.bytes_stored = data["bytes_stored"]
        self.index: dict[str, dict] = data["images"]
        self._fh = None

    def read(self, sha: str) -> bytes:
        entry = self.index.get(sha)
        if entry is None:
            raise VovnetError(f"{self.folder}: image {sha} is not in the store")
        if not self.bytes_stored:
            raise VovnetError(
                f"{self.folder}: images were normalized with download_images: false; "
                "set it to true for this dataset and rerun `dvc repro`"
            )
        if self._fh is None:
            self._fh = open(self.folder / TAR_NAME, "rb")
        # pread: no shared file offset, so DataLoader workers forked with this handle cannot interleave reads
        return os.pread(self._fh.fileno(), entry["size"], entry["offset"])

    def open(self, sha: str) -> Image.Image:
        img = Image.open(io.BytesIO(self.read(sha)))
        return img.convert("RGB")

    def export(self, shas, out_dir: str | os.PathLike) -> int:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        n = 0
        for sha in sorted(set(shas)):
            (out / f"{sha}.{_ext(self.index[sha]['format'])}").write_bytes(self.read(sha))
            n += 1
        return n

    def __getstate__(self):  # picklable for DataLoader workers: reopen the file lazily
        state = dict(self.__dict__)
        state["_fh"] = None
        return state
