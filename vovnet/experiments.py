"""`python -m vovnet exps`: experiments side by side in a terminal-wide table.

`dvc exp show` draws a column for every parameter (every knob lives in params.yaml, ~200), every metric
of every file and every dependency, so no pipeline fits it on a screen. This table keeps what tells
experiments apart: the parameters whose values differ between the rows, then per evaluation set the
learned policy's accuracy with half its 95% interval (1.96 times `acc_se`, clustered by shared image) and its
mean vision tokens (eval/<set>/metrics.json). It reads `dvc exp show --json`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess

from vovnet import VovnetError
from vovnet.io_utils import flatten

HEADLINE = ("acc", "tokens")
Z95 = 1.959963984540054  # as vovnet/evaluation/intervals.py: the standard normal's 97.5% quantile
INTERVAL_NOTE = "acc: learned policy's accuracy ± half its 95% interval (clustered by shared image)"
SEED = "train.seed"
SEEDS_NOTE = "mean ± std rows: experiments that differ only in train.seed, one value per seed"


def rows_from_json(data: list[dict]) -> list[dict]:
    """One row per revision and experiment: {name, params (flattened), sets: {set: {acc, acc_se, tokens}}}
    (acc_se None in commits from before the intervals)."""
    rows = []

    def add(name: str, entry: dict) -> None:
        body = entry.get("data") or {}
        params = {}
        for fname, content in sorted((body.get("params") or {}).items()):
            flat = flatten((content or {}).get("data") or {})
            params.update(flat if fname == "params.yaml" else {f"{fname}:{k}": v for k, v in flat.items()})
        sets = {}
        for path, content in (body.get("metrics") or {}).items():
            parts = path.split("/")
            if len(parts) == 3 and parts[0] == "eval" and parts[2] == "metrics.json":
                m = (content or {}).get("data") or {}
                old = m.get("learned") if isinstance(m.get("learned"), dict) else {}  # commits before the row layout
                sets[parts[1]] = {k: m.get(k, old.get(k)) for k in (*HEADLINE, "acc_se")}
        rows.append({"name": name, "params": params, "sets": sets, "error": bool(entry.get("error"))})

    def short(rev: str) -> str:  # "workspace", or a commit's hash
        return rev[:7] if len(rev) == 40 else rev

    for base in data:
        add(base.get("name") or short(base["rev"]), base)
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                add(f"└─ {rev.get('name') or exp.get('name') or short(rev['rev'])}", rev)
    return rows


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _spread(values: list) -> tuple[float, float] | None:
    """(mean, sample standard deviation) over the seeds; None when a seed lacks the figure."""
    if any(v is None for v in values):
        return None
    return statistics.mean(values), statistics.stdev(values)


def seed_summaries(rows: list[dict]) -> list[dict]:
    """One row per group of rows whose params differ only in train.seed, with two seeds or more: each set's acc
    and tokens as (mean, std) over the seeds. A seed counts once (the workspace repeats a committed run)."""
    groups: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["error"] or SEED not in r["params"]:
            continue
        rest = json.dumps({k: v for k, v in r["params"].items() if k != SEED}, sort_keys=True)
        groups.setdefault(rest, {}).setdefault(json.dumps(r["params"][SEED]), r)
    out = []
    for by_seed in groups.values():
        members = list(by_seed.values())
        if len(members) < 2:
            continue
        names = sorted({s for m in members for s in m["sets"]})
        sets = {s: {h: _spread([m["sets"].get(s, {}).get(h) for m in members]) for h in HEADLINE} for s in names}
        params = {**members[0]["params"], SEED: ",".join(sorted(by_seed, key=str))}
        out.append({"name": f"mean ± std, {len(members)} seeds", "params": params, "sets": sets, "error": False})
    return out


def _figure(figs: dict, key: str) -> str:
    """A set's figure; acc with half its 95% interval where the row has acc_se; a seed summary's mean ± std."""
    if isinstance(figs.get(key), tuple):
        mean, std = figs[key]
        return f"{mean:.4g}±{std:.2g}"
    cell = _cell(figs.get(key))
    if key == "acc" and figs.get("acc") is not None and figs.get("acc_se") is not None:
        cell += f"±{Z95 * figs['acc_se']:.2g}"
    return cell


def table(rows: list[dict]) -> str:
    """Experiment | each parameter that differs between rows | <set> acc, <set> tokens per evaluation set;
    then a mean ± std row per group of seeds (`dvc exp run --queue -S train.seed=...`)."""
    summaries = seed_summaries(rows)
    rows = rows + summaries
    # rows without params (a failed experiment, a commit that could not be read) would make every key differ
    known = [r for r in rows if r["params"]]
    keys = sorted({k for r in known for k in r["params"]})
    changed = [k for k in keys if len({json.dumps(r["params"].get(k), sort_keys=True) for r in known}) > 1]
    sets = sorted({s for r in rows for s in r["sets"]})
    # a split without answers (MMBench TEST) has no accuracy: no column for it
    figures = [(s, h) for s in sets for h in HEADLINE if any(r["sets"].get(s, {}).get(h) is not None for r in rows)]
    header = ["experiment", *changed, *(f"{s} {h}" for s, h in figures)]
    body = [
        [
            r["name"] + (" (failed)" if r["error"] else ""),
            *(_cell(r["params"].get(k)) for k in changed),
            *(_figure(r["sets"].get(s, {}), h) for s, h in figures),
        ]
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
        for line in (header, *body)
    ]
    if any(r["sets"].get(s, {}).get("acc_se") is not None for r in rows for s in sets):
        lines.append(INTERVAL_NOTE)
    if summaries:
        lines.append(SEEDS_NOTE)
    return "\n".join(lines)


def run_exps(all_commits: bool = False) -> int:
    cmd = ["dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    except FileNotFoundError:
        raise VovnetError("dvc is not installed (pip install -r requirements.txt)") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise VovnetError(f"`{' '.join(cmd)}` failed: {last}")
    print(table(rows_from_json(json.loads(p.stdout))))
    return 0
