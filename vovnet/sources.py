"""`python -m vovnet update [NAME...]` and `python -m vovnet pin [NAME...]`: what `dvc update` is to an import.

A download@ stage reruns when its params, code or data/samples change, not on every repro, so an external
source (the hub, a URL, a folder outside the repository) is checked when asked: `update` reruns those
download@ stages (`dvc repro -f -s`; an unchanged source leaves its output as it was). `pin` writes the hub
commit each download recorded (data/raw/<name>/SOURCE.json) into params.yaml as `revision:`, so a paper
run stays on the data it first fetched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from vovnet import VovnetError
from vovnet.config import load_params
from vovnet.data.download import read_record, source_kind

TRACKED = Path("data/samples")  # download@'s dep: the in-repository local sources DVC watches itself


def external(cfg: dict) -> bool:
    """A source DVC does not watch: anything but `generate` and a local path under data/samples."""
    kind = source_kind(cfg["source"])
    if kind == "generate":
        return False
    if kind == "file" and not cfg["source"].startswith("file:"):
        path = Path(cfg["source"]).resolve()
        return not path.is_relative_to(TRACKED.resolve())
    return True


def _names(params: dict, names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in params["datasets"]]
    if unknown:
        raise VovnetError(f"params.yaml: no dataset {', '.join(unknown)} (datasets: {', '.join(params['datasets'])})")
    return names or list(params["datasets"])


def run_update(names: list[str], params_path: str = "params.yaml") -> int:
    params = load_params(params_path)
    chosen = [n for n in _names(params, names) if names or external(params["datasets"][n])]
    if not chosen:
        print("no external sources (hub, URL, folder outside the repository): DVC watches them all")
        return 0
    stages = [f"download@{n}" for n in chosen]
    print(f"checking {', '.join(stages)}")
    code = subprocess.run(["dvc", "repro", "-f", "-s", *stages], env={**os.environ, "DVC_NO_ANALYTICS": "1"}).returncode
    if code == 0:
        print("done; `dvc repro` reruns what follows a changed source")
    return code


def run_pin(names: list[str], params_path: str = "params.yaml") -> int:
    """Write each hub dataset's recorded commit into params.yaml (round-trip: comments stay)."""
    params = load_params(params_path)
    yaml = YAML()
    yaml.preserve_quotes = True
    path = Path(params_path)
    doc = yaml.load(path.read_text(encoding="utf-8"))
    pinned = 0
    for name in _names(params, names):
        if source_kind(params["datasets"][name]["source"]) != "hf":
            continue
        record = read_record(Path("data/raw") / name)
        commit = record.get("commit") if record else None
        if not commit:
            raise VovnetError(f"data/raw/{name}/SOURCE.json: no hub commit recorded (run `dvc repro download@{name}`)")
        if doc["datasets"][name].get("revision") != commit:
            doc["datasets"][name]["revision"] = commit
            pinned += 1
        print(f"datasets.{name}.revision: {commit}")
    tmp = path.with_suffix(".yaml.partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    os.replace(tmp, path)
    print(f"{pinned} revision(s) written to {path}; `dvc repro` records them in dvc.lock (nothing is refetched)")
    return 0
