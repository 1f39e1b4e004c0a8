"""Predict's input: processed records or plain requests, checked line by line into questions or rejects.

A plain request is `{"id", "question", "image": path | [paths] | null, "choices"?: [...], "hint"?}`, its
image paths resolved inside the image root with the LLaVA adapter's containment rules
(vovnet/data/image_refs.py). A processed record (the project's record schema) reads its images from its
dataset's image store. Only image
headers are read here (size, for the policy's cost); pixels are decoded later, and only for questions
whose action looks at the image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vovnet import VovnetError
from vovnet.data.image_refs import resolve_in_roots
from vovnet.data.image_store import ImageStore
from vovnet.data.records import Reject
from vovnet.io_utils import dumps


@dataclass
class Request:
    line: int  # 1-based line in the input file
    rec: dict  # what the encoder reads: id, question, hint, choices
    paths: list[Path] = field(default_factory=list)  # plain request: files inside the image root
    store: ImageStore | None = None  # processed record: its dataset's store
    shas: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) per image

    @property
    def id(self) -> str:
        return self.rec["id"]


@dataclass
class RejectedLine:
    line: int
    id: str | None
    field: str
    reason: str

    def row(self) -> dict:
        return {"line": self.line, "id": self.id, "field": self.field, "reason": self.reason}


class ImageSources:
    """Where images come from: an image root for plain requests, the processed data root for records."""

    def __init__(self, image_root: str | Path, processed_root: str | Path = "data/processed"):
        self.image_root = Path(image_root)
        self.processed_root = Path(processed_root)
        self._stores: dict[str, ImageStore] = {}

    def store(self, dataset: str) -> ImageStore:
        if dataset not in self._stores:
            self._stores[dataset] = ImageStore(self.processed_root / dataset)
        return self._stores[dataset]


def load_images(req: Request) -> list[Image.Image]:
    """Decoded RGB images of a request; raises Reject when one cannot be decoded."""
    images = []
    try:
        if req.store is not None:
            images = [req.store.open(sha) for sha in req.shas]
        for p in req.paths:
            with Image.open(p) as img:
                images.append(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError, VovnetError) as exc:
        raise Reject(
            "image", f"undecodable image: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return images


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Reject("image", f"undecodable image {path.name}: {str(exc).splitlines()[0]}") from None


def _text_field(obj: dict, name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Reject(name, f"no {name}")
        return None
    if not isinstance(value, str):
        raise Reject(name, f"{name} must be a string, got {type(value).__name__}")
    return value.strip()


def _choices(obj: dict) -> list[str] | None:
    choices = obj.get("choices")
    if choices is None:
        return None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise Reject("choices", "choices must be a non-empty list of strings")
    if len(choices) > 26:
        raise Reject("choices", f"{len(choices)} choices; at most 26 (letters A-Z)")
    return choices


def _plain_request(obj: dict, line: int, sources: ImageSources) -> Request:
    question = _text_field(obj, "question", required=True)
    rec = {"question": question, "hint": _text_field(obj, "hint", required=False), "choices": _choices(obj)}
    raw = obj.get("image")
    names = [] if raw is None else [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Reject("image", "image must be a path or a list of paths")
    paths = []
    for name in names:
        try:
            paths.append(resolve_in_roots(name, [sources.image_root]))
        except FileNotFoundError:
            raise Reject("image", f"image {name!r} not found under {sources.image_root}") from None
    given = obj.get("id")
    if given is not None and not isinstance(given, (str, int)):
        raise Reject("id", "id must be a string or a number")
    # Without an id, a stable one from the content (the same request always gets the same id).
    rec["id"] = (
        str(given)
        if given is not None
        else "request-"
        + hashlib.sha256(dumps([rec["question"], rec["hint"], rec["choices"], names]).encode("utf-8")).hexdigest()[:16]
    )
    return Request(line, rec, paths=paths, sizes=[_image_size(p) for p in paths])


def _processed_record(obj: dict, line: int, sources: ImageSources) -> Request:
    question = _text_field(obj, "question", required=True)
    rec = {
        "id": str(obj["id"]),
        "question": question,
        "hint": _text_field(obj, "hint", required=False),
        "choices": _choices(obj),
    }
    images = obj["images"]
    if not isinstance(images, list) or not all(isinstance(i, dict) and "sha256" in i for i in images):
        raise Reject("images", "images must be a list of {sha256, width, height}")
    store = None
    if images:
        try:
            store = sources.store(str(obj.get("dataset")))
        except VovnetError as exc:
            raise Reject("images", str(exc)) from None
        for im in images:
            if im["sha256"] not in store.index:
                raise Reject("images", f"image {im['sha256']} is not in the {obj.get('dataset')} image store")
    return Request(
        line,
        rec,
        store=store,
        shas=[im["sha256"] for im in images],
        sizes=[(int(im["width"]), int(im["height"])) for im in images],
    )


def parse_line(text: str, line: int, sources: ImageSources) -> Request:
    """One input line -> a Request; raises Reject naming the field."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Reject("line", f"invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise Reject("line", f"expected a JSON object, got {type(obj).__name__}")
    if "images" in obj and "id" in obj and "image" not in obj:
        return _processed_record(obj, line, sources)
    return _plain_request(obj, line, sources)


def read_requests(
    path: str | Path, sources: ImageSources, keep=lambda n: True
) -> tuple[list[Request], list[RejectedLine]]:
    """Requests and rejects of the input lines n (0-based, blank lines skipped) for which keep(n) holds."""
    path = Path(path)
    if not path.is_file():
        raise VovnetError(f"{path}: input file not found")
    requests, rejects = [], []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = [(i, t) for i, t in enumerate(fh, 1) if t.strip()]
    except UnicodeDecodeError as exc:
        raise VovnetError(f"{path}: not valid UTF-8 near byte {exc.start}") from None
    for n, (lineno, text) in enumerate(lines):
        if not keep(n):
            continue
        try:
            requests.append(parse_line(text, lineno, sources))
        except Reject as exc:
            rid = _id_of(text)
            rejects.append(RejectedLine(lineno, rid, exc.field, exc.reason))
    return requests, rejects


def _id_of(text: str) -> str | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    return str(obj["id"]) if isinstance(obj, dict) and obj.get("id") is not None else None
