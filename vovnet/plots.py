"""PNG renderings of the Pareto front and the training curves, made offline.

`dvc plots show` draws vega-lite specs in the browser with vega loaded from a CDN, which leaves a blank
page on a machine without internet. These PNGs are rendered here by vl-convert (vega-lite compiled and
drawn in-process, fonts bundled), declared as DVC image plots, and so embedded as plain images.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import vl_convert

from vovnet.io_utils import atomic_path

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier inside the spec, never fetched
SCALE = 2


def _write_png(spec: dict, out: str | os.PathLike) -> None:
    png = vl_convert.vegalite_to_png(spec, scale=SCALE)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(png)


def pareto_png(points: list[dict], title: str, out: str | os.PathLike) -> None:
    """Accuracy against mean vision tokens: curves (points with a `param`) as lines, single policies as
    larger points."""
    values = [
        {"policy": p["policy"], "param": p["param"], "accuracy": p["accuracy"], "tokens": p["vision_tokens"]}
        for p in points
        if p["accuracy"] is not None
    ]
    x = {"field": "tokens", "type": "quantitative", "title": "mean vision tokens per prompt"}
    y = {
        "field": "accuracy",
        "type": "quantitative",
        "title": "accuracy",
        "scale": {"zero": False},
        "axis": {"format": ".3f"},
    }
    colour = {"field": "policy", "type": "nominal", "title": "policy"}
    spec = {
        "$schema": SCHEMA,
        "title": title,
        "width": 520,
        "height": 340,
        "data": {"values": values},
        "layer": [
            {
                "transform": [{"filter": "datum.param !== null"}],
                "mark": {"type": "line", "point": True},
                "encoding": {"x": x, "y": y, "color": colour, "order": {"field": "tokens", "type": "quantitative"}},
            },
            {
                "transform": [{"filter": "datum.param === null"}],
                "mark": {"type": "point", "filled": True, "size": 140, "shape": "diamond"},
                "encoding": {"x": x, "y": y, "color": colour},
            },
        ],
    }
    _write_png(spec, out)


def read_tsv_series(metrics_dir: str | os.PathLike) -> list[dict]:
    """dvclive's per-metric TSVs (step, value) under `metrics_dir`, as rows {metric, step, value}."""
    root = Path(metrics_dir)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        name = path.relative_to(root).with_suffix("").as_posix()
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            value_col = [c for c in (reader.fieldnames or []) if c not in ("step", "timestamp")]
            for i, row in enumerate(reader, start=2):
                try:
                    rows.append({"metric": name, "step": int(row["step"]), "value": float(row[value_col[-1]])})
                except (KeyError, IndexError, TypeError, ValueError):
                    raise ValueError(f"{path}: line {i}: expected numeric step and value columns") from None
    return rows


def training_png(metrics_dir: str | os.PathLike, out: str | os.PathLike, columns: int = 4) -> int:
    """One small panel per training metric (independent scales); returns the number of panels."""
    rows = read_tsv_series(metrics_dir)
    spec = {
        "$schema": SCHEMA,
        "title": "training curves",
        "data": {"values": rows},
        "facet": {"field": "metric", "type": "nominal", "title": None},
        "columns": columns,
        "spec": {
            "width": 200,
            "height": 120,
            "mark": {"type": "line"},
            "encoding": {
                "x": {"field": "step", "type": "quantitative"},
                "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"zero": False}},
            },
        },
        "resolve": {"scale": {"x": "independent", "y": "independent"}},
    }
    _write_png(spec, out)
    return len({r["metric"] for r in rows})
