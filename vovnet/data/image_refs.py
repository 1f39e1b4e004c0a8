"""Image cells to ImageRefs, with containment: a file an image cell names is read only when its real
path (symlinks followed) lies inside the folder it belongs to — the snapshot for HF cells, the image
root for LLaVA names. Anything else becomes a reject naming the field, never a read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from vovnet.data.records import ImageRef, Reject, kind_of


def resolve_inside(root: Path, name: str, field: str, where: str) -> Path:
    """The real path of `root/name` (an absolute `name` is taken as is) when it lies inside `root`.

    Raises Reject (outside, symlink loop, unreadable) or FileNotFoundError (nothing there)."""
    if not name or "\x00" in name:
        raise Reject(field, "empty file name")
    real_root = os.path.realpath(root)
    try:
        real = os.path.realpath(os.path.join(root, name), strict=True)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Reject(field, f"image path {name!r} is a symlink loop") from None
        raise Reject(field, f"cannot resolve image path {name!r}: {exc.strerror}") from None
    if os.path.commonpath([real_root, real]) != real_root:
        raise Reject(field, f"image path {name!r} resolves outside {where}")
    if not os.path.isfile(real):
        raise Reject(field, f"image path {name!r} is not a file")
    return Path(real)


def resolve_in_roots(name: str, roots: list[Path]) -> Path:
    """The file `name` under the first root that has it. Raises Reject (unsafe) or FileNotFoundError."""
    if not name or "\x00" in name:
        raise Reject("image", "empty image name")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise Reject("image", f"image path {name!r} escapes its root (absolute or '..')")
    for root in roots:
        try:
            return resolve_inside(root, name, "image", "its image root (symlink)")
        except FileNotFoundError:
            continue
    raise FileNotFoundError(name)


def hf_image_ref(field: str, cell, snapshot: Path) -> ImageRef:
    """An HF Image cell (cast with decode=False: {'bytes', 'path'}) or raw bytes.

    An absent image is ImageRef(kind 'bytes', value None): the adapter decides whether it is required."""
    if cell is None:
        return ImageRef(field, "bytes", None)
    if isinstance(cell, (bytes, bytearray)):
        return ImageRef(field, "bytes", bytes(cell))
    if not isinstance(cell, dict):
        return ImageRef(field, "invalid", f"expected an image cell ({{bytes, path}}), got {kind_of(cell)}")
    data, path = cell.get("bytes"), cell.get("path")
    if data is not None:
        if not isinstance(data, (bytes, bytearray)):
            return ImageRef(field, "invalid", f"image bytes: expected bytes, got {kind_of(data)}")
        return ImageRef(field, "bytes", bytes(data))
    if path is None or path == "":
        return ImageRef(field, "bytes", None)
    if not isinstance(path, str):
        return ImageRef(field, "invalid", f"image path: expected text, got {kind_of(path)}")
    try:
        return ImageRef(field, "path", resolve_inside(snapshot, path, field, "the snapshot folder"))
    except Reject as rej:
        return ImageRef(field, "invalid", rej.reason)
    except FileNotFoundError:
        return ImageRef(field, "invalid", f"image path {path!r} not found in the snapshot folder")
