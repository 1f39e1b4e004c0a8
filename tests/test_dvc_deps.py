"""dvc.yaml's code deps are exactly the project modules each stage's cmd imports (vovnet/deps.py)."""

import copy
import shutil
import textwrap

import pytest
from conftest import ROOT

from vovnet.config import read_yaml
from vovnet.deps import closure, cmd_entries, report, resolve_stages
from vovnet.presets import write_preset

DVC_YAML = read_yaml(ROOT / "dvc.yaml")


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """params.yaml as it is, and as the default (sample) and demo presets make it."""
    out = {"current": read_yaml(ROOT / "params.yaml")}
    for name in ("sample", "demo"):
        path = tmp_path_factory.mktemp(name) / "params.yaml"
        shutil.copy(ROOT / "params.yaml", path)
        write_preset(name, path)
        out[name] = read_yaml(path)
    return out


def listing(params, dvc_yaml=DVC_YAML):
    return {s.name: s for s in resolve_stages(dvc_yaml, params)}


@pytest.mark.parametrize("preset", ["current", "sample", "demo"])
def test_dvc_yaml_lists_exactly_the_imported_code(preset, presets):
    stages = listing(presets[preset])
    assert {"merge", "model", "train", "plot_training"} <= set(stages)
    assert report(list(stages.values())) == []


def test_generation_code_reruns_evaluation_only_and_predict_code_nothing(presets):
    for params in presets.values():
        stages = listing(params)
        with_generation = {n for n, s in stages.items() if "vovnet/model/generation.py" in s.listed}
        assert with_generation == {n for n in stages if n.startswith("evaluate@")} != set()
        assert not [n for n, s in stages.items() if any(p.startswith("vovnet/inference/") for p in s.listed)]
        assert "vovnet/tasks/shapes_vqa/adapter.py" in stages["model"].listed  # the tokenizer corpus' words


def test_each_item_lists_its_own_adapter_and_protocol(presets):
    stages = listing(presets["sample"])
    assert "vovnet/tasks/textvqa/adapter.py" in stages["normalize@textvqa"].listed
    assert "vovnet/tasks/textvqa/adapter.py" not in stages["normalize@mmmu"].listed
    # the MMBench layout both MMBench tasks read lives below them, and every item of the entry lists it
    assert all("vovnet/data/mmbench_layout.py" in stages[f"normalize@{d}"].listed for d in ("mmmu", "llava"))
    # an evaluation set names its protocol: editing MMMU's protocol reruns MMMU's sets only
    assert "vovnet/tasks/textvqa/protocol.py" in stages["evaluate@textvqa"].listed
    assert not [n for n, s in stages.items() if "vovnet/tasks/mmmu/protocol.py" in s.listed and n != "evaluate@mmmu"]
    # the demo's generator feeds the tiny model's tokenizer through the model stage, never train
    assert not [p for p in stages["train"].listed if p.startswith("vovnet/tasks/")]


def test_a_missing_or_extra_module_is_named_with_its_stage(presets):
    broken = copy.deepcopy(DVC_YAML)
    broken["stages"]["merge"]["deps"].remove("vovnet/io_utils.py")
    broken["stages"]["train"]["deps"].append("vovnet/model/generation.py")
    broken["stages"]["normalize"]["do"]["deps"].remove("vovnet/tasks/${item.adapter}/adapter.py")
    lines = report(list(listing(presets["sample"], broken).values()))
    assert "merge: missing dep vovnet/io_utils.py (the stage imports it)" in lines
    assert "train: extra dep vovnet/model/generation.py (the stage does not import it)" in lines
    assert any(line.startswith("normalize@llava: imports vovnet.tasks.{}.adapter by name") for line in lines)
    assert "normalize@textvqa: missing dep vovnet/tasks/textvqa/adapter.py (the stage imports it)" not in lines
    datasets = presets["sample"]["datasets"]
    assert len([line for line in lines if line.startswith("normalize@")]) == len(datasets)  # one line per item


def test_a_whole_folder_dep_counts_every_module_in_it(presets):
    wide = copy.deepcopy(DVC_YAML)
    wide["stages"]["train"]["deps"].append("vovnet/model")
    lines = report(list(listing(presets["sample"], wide).values()))
    assert "train: extra dep vovnet/model/generation.py (the stage does not import it)" in lines
    assert "train: extra dep vovnet/model/tiny.py (the stage does not import it)" not in lines


def write(root, rel, text):
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(textwrap.dedent(text))


def test_closure_follows_function_level_relative_and_by_name_imports(tmp_path):
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/launch.py", "import runpy\nfrom pkg import cli\n")
    write(tmp_path, "pkg/cli.py", "")
    write(tmp_path, "pkg/core.py", "def f():\n    from .helpers import x\n    return x\n")
    write(tmp_path, "pkg/helpers.py", "x = 1\n")
    write(tmp_path, "pkg/unused.py", "")
    write(
        tmp_path,
        "pkg/plugins/__init__.py",
        "import importlib\ndef get(name):\n    return importlib.import_module(f'pkg.plugins.{name}')\n",
    )
    write(tmp_path, "pkg/plugins/a.py", "from pkg.plugins import b\n")
    write(tmp_path, "pkg/plugins/b.py", "")
    write(tmp_path, "stages/run.py", "import sys\nfrom pkg.core import f\nfrom pkg.plugins import get\n")
    entries = cmd_entries("python -m pkg.launch stages/run.py --set ${key}", tmp_path)
    assert entries == ["pkg/__init__.py", "pkg/launch.py", "stages/run.py"]
    got = closure(entries, tmp_path)
    assert got.files == {
        "pkg/__init__.py",
        "pkg/launch.py",
        "pkg/cli.py",
        "stages/run.py",
        "pkg/core.py",
        "pkg/helpers.py",
        "pkg/plugins/__init__.py",
    }
    assert [f.pattern for f in got.families] == ["pkg.plugins.{}"]
    # importing a member alone (`from pkg.plugins import b`) runs the package but calls nothing by name
    assert closure(["pkg/plugins/a.py"], tmp_path).families == set()


def test_a_by_name_import_the_tool_cannot_read_is_reported(tmp_path):
    write(tmp_path, "pkg/__init__.py", "")
    write(
        tmp_path,
        "pkg/tasks/__init__.py",
        "import importlib\ndef get(name):\n    return importlib.import_module(f'{__package__}.{name}.adapter')\n"
        "def raw(name):\n    return importlib.import_module(name)\n",
    )
    write(tmp_path, "stages/run.py", "from pkg.tasks import get, raw\n")
    assert {f.pattern for f in closure(["stages/run.py"], tmp_path).families} == {"pkg.tasks.{}.adapter", "?"}
    # a family belongs to the function that makes the call: importing `get` alone uses only its family
    write(tmp_path, "stages/get.py", "from pkg.tasks import get\n")
    assert {f.pattern for f in closure(["stages/get.py"], tmp_path).families} == {"pkg.tasks.{}.adapter"}
    write(tmp_path, "stages/all.py", "from pkg import tasks\n")
    assert {f.pattern for f in closure(["stages/all.py"], tmp_path).families} == {"pkg.tasks.{}.adapter", "?"}
    dvc_yaml = {"stages": {"run": {"cmd": "python stages/run.py", "deps": ["stages/run.py"]}}}
    (stage,) = resolve_stages(dvc_yaml, {}, tmp_path)
    assert any("cannot read" in p for p in stage.problems) and any(
        "pkg/tasks/${item.<field>}/adapter.py" in p for p in stage.problems
    )


def test_evaluate_without_its_protocol_is_told_to_list_it(presets):
    narrow = copy.deepcopy(DVC_YAML)
    narrow["stages"]["evaluate"]["do"]["deps"].remove("vovnet/tasks/${item.protocol}/protocol.py")
    lines = report(list(listing(presets["sample"], narrow).values()))
    assert any(
        line.startswith("evaluate@mmbench: imports vovnet.tasks.{}.protocol by name") and "or the folder of all" in line
        for line in lines
    )
