"""params.yaml schema: every constrained key rejects a bad value with one line naming key, value and rule."""

import copy
import json
import subprocess
import sys

import pytest
from helpers import ROOT
from ruamel.yaml import YAML

from vovnet import VovnetError
from vovnet.config import dataset_config, json_schema, load_params, read_yaml


def test_exp_run_float_written_as_1e_05_reads_as_float(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  lr: 1e-05\n  head_lr: '2e-3'\n  batch_size: 2.0\n")
    params = load_params(p)
    assert params["train"]["lr"] == pytest.approx(1e-5) and isinstance(params["train"]["lr"], float)
    assert params["train"]["head_lr"] == pytest.approx(2e-3)
    assert params["train"]["batch_size"] == 2 and isinstance(params["train"]["batch_size"], int)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _bad_values(schema: dict, node: dict, path: tuple, example: dict):
    """(key path, bad value, expected rule) for every constraint the exported schema declares."""
    node = _resolve(schema, node)
    branches = [_resolve(schema, b) for b in node.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        node = branches[0]
    elif branches:  # a union (e.g. 'auto' or an integer >= 1): a number out of every branch's range
        for branch in branches:
            for p, v, rule in _bad_values(schema, branch, path, example):
                if rule.startswith("must be ") and isinstance(v, (int, float)):
                    yield p, v, "~" + rule.removeprefix("must be ")
        return
    if "properties" in node:
        for key, sub in node["properties"].items():
            yield from _bad_values(schema, sub, path + (key,), example)
        return
    if isinstance(node.get("additionalProperties"), dict):  # datasets, evaluation.sets: take the file's first entry
        entries = _get(example, path, {})  # a key params.yaml leaves to its task's defaults: none
        if entries:
            yield from _bad_values(schema, node["additionalProperties"], path + (next(iter(entries)),), example)
        return
    rules = {"enum": ("nosuch", "must be "), "pattern": ("nosuch", "expected 'dataset/split'")}
    if "enum" in node:
        yield path, *rules["enum"]
    if "pattern" in node:
        yield path, *rules["pattern"]
    if "minimum" in node:
        yield path, node["minimum"] - 1, f"must be >= {_num(node['minimum'])}"
    if "exclusiveMinimum" in node:
        yield path, node["exclusiveMinimum"], f"must be > {_num(node['exclusiveMinimum'])}"
    if "maximum" in node:
        yield path, node["maximum"] + 1, f"must be <= {_num(node['maximum'])}"
    if "exclusiveMaximum" in node:
        yield path, node["exclusiveMaximum"], f"must be < {_num(node['exclusiveMaximum'])}"
    if node.get("minItems"):
        yield path, [], "needs at least"
    if node.get("maxItems"):
        yield path, [0] * (node["maxItems"] + 1), "allows at most"
    if node.get("type") == "array" and "items" in node:
        for sub, bad, rule in _bad_values(schema, node["items"], (), example):  # sub: a key of an object item
            yield path + (0,) + sub, bad, rule


def _num(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _get(doc, path, missing=None):
    for p in path:
        if missing is not None and p not in doc:
            return missing
        doc = doc[p]
    return doc


def _set(doc, path, value):
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


EXAMPLE = read_yaml(ROOT / "params.yaml")
CASES = sorted({(p, json.dumps(v), r) for p, v, r in _bad_values(json_schema(), json_schema(), (), EXAMPLE)})


def _dotted(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def test_every_issue_example_is_covered():
    paths = {_dotted(p) for p, _, _ in CASES}
    for key in (
        "train.batch_size",
        "train.micro_batch_size",
        "evaluation.batch_size",
        "train.lr",
        "policy.mode",
        "policy.gain_loss",
        "train.scheduler",
        "train.max_length",
        "model.dtype",
        "merge.val_fraction",
        "vision_budget.coarse.min_pixels",
        "datasets.mmbench.on_missing_image",
        "evaluation.sets.mmbench.protocol",
    ):
        assert key in paths, key


@pytest.mark.parametrize("path,bad,rule", CASES, ids=[f"{_dotted(p)}={v}" for p, v, _ in CASES])
def test_bad_value_is_one_line_naming_key_value_and_rule(tmp_path, path, bad, rule):
    doc = copy.deepcopy(EXAMPLE)
    bad = json.loads(bad)
    _set(doc, path, bad)  # a list item's index is a key too
    p = tmp_path / "params.yaml"
    YAML(typ="safe", pure=True).dump(doc, p)
    with pytest.raises(VovnetError) as err:
        load_params(p)
    msg = str(err.value)
    assert "\n" not in msg
    if rule.startswith("~"):  # a union's error lists every branch's rule
        assert msg.startswith(f"{p}: {_dotted(path)}: ") and rule[1:] in msg, msg
    else:
        assert msg.startswith(f"{p}: {_dotted(path)}: {rule}"), msg
    assert msg.endswith(f"got {bad!r}"), msg


@pytest.mark.parametrize(
    "yaml_text,expected",
    [
        (
            "vision_budget:\n  full:\n    min_pixels: 70000\n    max_pixels: 65536\n",
            "vision_budget.full: min_pixels must be <= max_pixels, got 70000 > 65536",
        ),
        (
            "merge:\n  heldout_fraction: 0.6\n  val_fraction: 0.5\n",
            "merge: heldout_fraction + val_fraction must be < 1",
        ),
        ("train:\n  stage1:\n    mix: {full: 0, coarse: 0, no: 0}\n", "train.stage1.mix: the stage-1 action weights"),
        ("model:\n  use_thinking_for_full: true\n", "model: use_thinking_for_full is true but full_model_name is null"),
        ("train:\n  lrr: 0.1\n", "train.lrr: unknown key (did you mean lr? known: batch_size,"),
        ("polcy:\n  mode: soft\n", "polcy: unknown key (did you mean policy? known: "),
        ("train:\n  batch_size: true\n", "train.batch_size: expected a number, not true/false"),
        ("train:\n  lr: fast\n", "train.lr: expected a number, got 'fast'"),
        ("train:\n  batch_size: 2.5\n", "train.batch_size: expected a whole number, got 2.5"),
        (
            "datasets:\n  mmmu:\n    source: x\n    subset: 5\n",
            "datasets.mmmu.subset: expected a string or a list, got 5",
        ),
        ("datasets:\n  mine:\n    source: x\n", "datasets.mine.adapter: missing, and 'mine' names no adapter"),
        ("datasets:\n  mmmu:\n    max_samples: 3\n", "datasets.mmmu.source: missing"),
        ("train: 5\n", "train: expected a mapping, got 5"),
        (
            "evaluation:\n  uncertainty:\n    coarse_quantiles: [0.8, 0.2]\n",
            "evaluation.uncertainty.coarse_quantiles: low 0.8 above high 0.2",
        ),
        (
            "evaluation:\n  sets:\n    x: {dataset: mmmu, split: validation, protocol: mmmu}\n",
            "evaluation.sets.x.images: missing (required)",
        ),
    ],
)
def test_cross_field_and_type_errors(tmp_path, yaml_text, expected):
    p = tmp_path / "params.yaml"
    p.write_text(yaml_text)
    with pytest.raises(VovnetError) as err:
        load_params(p)
    assert str(err.value).startswith(f"{p}: {expected}"), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "stage,args,yaml_text,expected",
    [
        ("stages/train.py", [], "train:\n  batch_size: 0\n", "train.batch_size: must be >= 1, got 0"),
        (
            "stages/evaluate.py",
            ["--set", "x"],
            "evaluation:\n  batch_size: 0\n",
            "evaluation.batch_size: must be >= 1, got 0",
        ),
    ],
)
def test_stage_stops_before_any_work_with_one_line(tmp_path, stage, args, yaml_text, expected):
    (tmp_path / "params.yaml").write_text(yaml_text)
    p = subprocess.run(
        [sys.executable, str(ROOT / stage), "--params", "params.yaml", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: params.yaml: {expected}"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("VOVNET_HF_DATASET_ID_MMMU", "me/mmmu-mirror")
    monkeypatch.setenv("VOVNET_MMBENCH_LITE_URL", "https://example.org/lite.tsv")
    assert dataset_config("mmmu", {"source": "x"})["source"] == "hf:me/mmmu-mirror"
    assert dataset_config("mmbench_lite", {"source": "x"})["source"] == "https://example.org/lite.tsv"


def test_dataset_config_names_the_dataset():
    with pytest.raises(VovnetError, match=r"^params.yaml: datasets.mine.max_samples: must be >= 0, got -3$"):
        dataset_config("mine", {"adapter": "mmmu", "source": "x", "max_samples": -3})


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "params.schema.json").read_text())
    assert committed == json_schema(), "run `python -m vovnet schema` and commit params.schema.json"


@pytest.mark.parametrize(
    "schema,names,module", [("config_run", "PROTOCOLS", "protocol"), ("config", "ADAPTERS", "adapter")]
)
def test_schema_choices_are_the_task_folders(schema, names, module):
    import importlib

    folders = sorted(p.parent.name for p in (ROOT / "vovnet" / "tasks").glob(f"*/{module}.py"))
    assert sorted(getattr(importlib.import_module(f"vovnet.{schema}"), names)) == folders and folders
