"""dvc.yaml's `params:` are exactly the keys each stage reads: every stage runs on the samples, in this
process, with a params mapping that records each value read, and the keys are compared with dvc.yaml.

A key read but not declared leaves outputs stale; a key declared but never read reruns the stage for
nothing. The stages get their params from outside (their `load_params` and the dataset-config helpers
are replaced here), so production code holds no switch for this test."""

import importlib.util
import os
import shutil
import sys

import pytest
from conftest import ROOT

from vovnet import config
from vovnet.config import read_yaml
from vovnet.deps import interpolate, resolve_stages
from vovnet.io_utils import dumps
from vovnet.presets import write_preset
from vovnet.registry import defaults

pytestmark = pytest.mark.slow
SMALL = {  # fewer steps and questions: the same keys are read, in less time
    "train": {"stage1": {"epochs": 1}, "stage2": {"epochs": 1}},
    "evaluation": {"max_samples": 4},
}
DEMO_SIZES = {"train": 48, "policy": 16, "heldout": 16}
# Declared whole: params.yaml's dataset and evaluation-set entries list only what differs from their task's
# defaults.yaml, and DVC refuses a params key the file does not hold, so these stages declare the whole
# entry. A key read outside it is still an error; a key of it that no stage reads is allowed here (a
# needless rerun when only that key changes, documented in docs/development.md).
WHOLE_ENTRIES = ("datasets.${key}", "evaluation.sets.${key}")


class Recording(dict):
    """A params mapping that logs the dotted path of every value read (a mapping is read through its values)."""

    def __init__(self, data: dict, log: set, prefix: tuple = ()):
        super().__init__({k: Recording(v, log, prefix + (k,)) if isinstance(v, dict) else v for k, v in data.items()})
        self.log, self.prefix = log, prefix

    def _read(self, key, value):
        if not isinstance(value, Recording) or not value:  # an empty mapping is itself the value
            self.log.add(self.prefix + (key,))
        return value

    def __getitem__(self, key):
        return self._read(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self._read(key, super().get(key, default)) if key in self else default

    def __iter__(self):  # dict(x) and **x then read every value through __getitem__
        return iter(list(super().keys()))

    def items(self):
        return [(k, self[k]) for k in super().keys()]

    def values(self):
        return [self[k] for k in super().keys()]

    def copy(self):
        return Recording(dict(self.items()), self.log, self.prefix)


def plain(value):
    """A recorded mapping as plain dicts, read without recording (validation is not a use)."""
    return {k: plain(v) for k, v in dict.items(value)} if isinstance(value, dict) else value


def load_stage(script: str):
    folder = str((ROOT / script).parent)  # first on the path, as `python stages/x.py` makes it (this_checkout)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"stage_{os.path.basename(script)[:-3]}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REAL_LOAD_PARAMS, REAL_DATASET_CONFIG = config.load_params, config.dataset_config


def run_stage(cmd: str, log: set, monkeypatch) -> None:
    """Run one dvc.yaml cmd's script in this process, its params recorded into `log`."""
    argv = cmd.split()
    script = next(a for a in argv if a.endswith(".py"))
    module = load_stage(script)

    def load_params(path="params.yaml"):
        return Recording(REAL_LOAD_PARAMS(path), log)

    def dataset_config(name, cfg):  # revalidated overrides: keep recording under datasets.<name>
        return Recording(REAL_DATASET_CONFIG(name, plain(cfg)), log, ("datasets", name))

    for name, fake in (
        ("load_params", load_params),
        ("dataset_config", dataset_config),
        ("dataset_in", lambda params, name: params["datasets"][name]),
    ):
        monkeypatch.setattr(config, name, fake)  # for a stage that imports it inside main()
        if hasattr(module, name):
            monkeypatch.setattr(module, name, fake)
    monkeypatch.setattr(sys, "argv", argv[argv.index(script) :])
    assert module.main() in (0, None), cmd


def leaves(params: dict, prefix: tuple) -> set[tuple]:
    """The leaf keys under `prefix`, relative to it (an empty mapping or a scalar is one leaf: ())."""
    node = params
    for part in prefix:
        node = node[part]
    if not isinstance(node, dict) or not node:
        return {()}
    return {(k,) + leaf for k, v in node.items() for leaf in leaves(params, prefix + (k,))}


def overlaps(a: tuple, b: tuple) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def stage_runs(dvc_yaml: dict, params: dict):
    """(stage, entry, cmd, {declared template: resolved key}) of every stage, in the pipeline's order."""
    for s in resolve_stages(dvc_yaml, params):
        spec = dvc_yaml["stages"][s.group]
        body = spec.get("do", spec)
        keys = {str(e): tuple(interpolate(str(e), params, s.key, s.item).split(".")) for e in body.get("params") or []}
        yield s.name, s.group, interpolate(body["cmd"], params, s.key, s.item), keys


def workspace(tmp_path, preset: str):
    shutil.copytree(ROOT / "data" / "samples", tmp_path / "data" / "samples")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    write_preset(preset, tmp_path / "params.yaml")  # whichever preset params.yaml holds now
    raw = read_yaml(tmp_path / "params.yaml")
    for section, values in SMALL.items():
        for k, v in values.items():
            raw[section][k] = {**raw[section][k], **v} if isinstance(v, dict) else v
    for ds in raw["datasets"].values():  # a generated or drawn set: a few questions per split
        spec = ds.get("generator") or defaults(ds["adapter"])["dataset"].get("generator")
        if isinstance(spec, dict):
            ds["generator"] = {**spec, "sizes": DEMO_SIZES}
    (tmp_path / "params.yaml").write_text(dumps(raw) + "\n")  # JSON is YAML
    return raw


def test_each_stage_declares_exactly_the_params_it_reads(tmp_path_factory, monkeypatch):
    """Per stage, every key read is declared. Per dvc.yaml entry, every declared key is read by one of its
    stages on the default pipeline or the demo presets (a foreach entry declares one list for all items:
    `generator` is read by the generated and drawn sets' adapters only)."""
    monkeypatch.setenv("VOVNET_LOG_LEVEL", "WARNING")
    dvc_yaml = read_yaml(ROOT / "dvc.yaml")
    problems, reads = [], {}  # reads: (entry, template) -> [(relative leaves declared, relative keys read)]
    for preset in ("sample", "demo", "demo_easyvqa"):
        ws = tmp_path_factory.mktemp(preset)
        params = workspace(ws, preset)
        monkeypatch.chdir(ws)
        for name, group, cmd, keys in stage_runs(dvc_yaml, params):
            log: set = set()
            run_stage(cmd, log, monkeypatch)
            problems += [
                f"{name}: reads {'.'.join(k)}, not in its params"
                for k in sorted(log)
                if not any(k[: len(d)] == d for d in keys.values())
            ]
            for template, resolved in keys.items():
                got = {r[len(resolved) :] for r in log if overlaps(r, resolved)}
                reads.setdefault((group, template), []).append((leaves(params, resolved), got))
    for (group, template), runs in reads.items():
        if template in WHOLE_ENTRIES:
            continue
        declared = {leaf for leaves_, _ in runs for leaf in leaves_}
        read = {r for _, got in runs for r in got}
        problems += [
            f"{group}: declares {'.'.join((template,) + leaf)}, which none of its stages reads"
            for leaf in sorted(declared)
            if not any(overlaps(leaf, r) for r in read)
        ]
    assert not problems, "\n".join(problems)
