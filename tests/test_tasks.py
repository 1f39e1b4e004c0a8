"""The task registry (vovnet/registry.py): one folder per benchmark under vovnet/tasks/, its modules checked
against the engine's interfaces, its defaults.yaml under params.yaml's entries; and the one-way boundary:
nothing below the tasks imports them but the registry."""

import ast
from pathlib import Path

import pytest
from helpers import ROOT

from vovnet import VovnetError
from vovnet import registry as tasks
from vovnet.config import Dataset, EvalSet, load_params, read_yaml
from vovnet.data.interfaces import Adapter, SampleMaker
from vovnet.evaluation.interfaces import EvalProtocol
from vovnet.registry import defaults, get_adapter, get_protocol, get_sample_maker, with_defaults

FOLDERS = sorted(p.name for p in (ROOT / "vovnet" / "tasks").iterdir() if (p / "__init__.py").exists())


def test_every_folder_is_a_task_with_at_least_an_adapter_or_a_protocol():
    assert set(FOLDERS) == set(tasks.ADAPTERS) | set(tasks.PROTOCOLS)
    assert {"mmbench", "mmbench_lite", "mmmu", "textvqa", "llava", "shapes_vqa"} <= set(tasks.ADAPTERS)


@pytest.mark.parametrize("name", tasks.ADAPTERS)
def test_adapters_load_with_every_interface_member(name):
    adapter = get_adapter(name, Adapter)
    for member in ("source_files", "iter_rows", "build", "hf_configs"):
        assert callable(getattr(adapter, member))


@pytest.mark.parametrize("name", tasks.PROTOCOLS)
def test_protocols_load_with_a_writer_and_breakdowns(name):
    protocol = get_protocol(name, EvalProtocol)
    assert callable(protocol.write_submission) and isinstance(protocol.BREAKDOWNS, tuple)


def test_sample_makers_run_in_a_strict_order():
    orders = [get_sample_maker(n, SampleMaker).ORDER for n in tasks.SAMPLES]
    assert len(set(orders)) == len(orders)
    # Lite's sample is drawn from MMBench's, so it comes after it
    assert get_sample_maker("mmbench_lite", SampleMaker).ORDER > get_sample_maker("mmbench", SampleMaker).ORDER


def test_unknown_names_are_one_line_errors():
    with pytest.raises(VovnetError, match=r"^params.yaml: unknown evaluation protocol 'nosuch' \(known: mmbench, "):
        get_protocol("nosuch", EvalProtocol)
    with pytest.raises(VovnetError, match=r"^params.yaml: unknown adapter 'short_answer' \(known: easy_vqa, llava, "):
        get_adapter("short_answer", Adapter)  # a protocol-only folder has no adapter


@pytest.mark.parametrize("name", FOLDERS)
def test_defaults_files_validate(name):
    d = defaults(name)
    assert set(d) == {"dataset", "evaluation_set"}
    Dataset.model_validate(d["dataset"])  # every key known, every value valid
    assert set(d["evaluation_set"]) <= set(EvalSet.model_fields) - {"dataset", "images"}
    assert "source" not in d["dataset"], "a dataset's source is always a params.yaml choice"
    assert "protocol" not in d["evaluation_set"], "an evaluation set names its protocol in params.yaml"
    if d["evaluation_set"]:  # evaluation_set defaults apply to the sets a task's protocol scores
        assert name in tasks.PROTOCOLS


def test_params_entries_start_from_their_task_defaults(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(
        "datasets:\n  mine:\n    adapter: mmmu\n    source: x\n    splits: [dev]\n"
        "  tv:\n    adapter: textvqa\n    source: y\n"
        "evaluation:\n  sets:\n    s:\n      dataset: tv\n      protocol: textvqa\n      images: tv\n"
    )
    params = load_params(p)
    assert params["datasets"]["mine"]["subset"] == "all" and params["datasets"]["mine"]["splits"] == ["dev"]
    assert params["datasets"]["tv"]["splits"] == ["validation"]
    assert params["evaluation"]["sets"]["s"] == {
        "dataset": "tv",
        "images": "tv",
        "split": "validation",
        "protocol": "textvqa",
        "prompt": "standard",  # the schema's default question text (docs/evaluation.md)
    }


def test_the_shipped_params_equal_the_full_listing_they_replaced():
    """params.yaml lists only what differs; filled from the defaults it is what the old full file said."""
    params = with_defaults(read_yaml(ROOT / "params.yaml"))
    mmbench, llava = params["datasets"]["mmbench"], params["datasets"]["llava"]
    assert mmbench["splits"] == ["dev", "test"] and mmbench["lang"] == "en" and mmbench["subset"] is None
    assert llava["splits"] == ["train"] and llava["image_root"] == "data/raw/llava/images"
    assert params["evaluation"]["sets"]["mmmu"]["protocol"] == "mmmu"


def test_a_bad_defaults_file_names_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "defaults.yaml").write_text("datasets:\n  splits: [dev]\n")
    monkeypatch.setattr(tasks, "defaults_file", lambda name: tmp_path / name / "defaults.yaml")
    defaults.cache_clear()
    try:
        with pytest.raises(VovnetError, match=r"mine/defaults.yaml: 'datasets': expected the mappings dataset and "):
            defaults("mine")
    finally:
        defaults.cache_clear()


def test_a_set_without_its_protocol_is_a_one_line_error(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(
        "datasets:\n  tv:\n    adapter: textvqa\n    source: y\n"
        "evaluation:\n  sets:\n    s:\n      dataset: tv\n      split: validation\n      images: tv\n"
    )
    with pytest.raises(VovnetError, match=r"params.yaml: evaluation\.sets\.s\.protocol: missing \(required\)$"):
        load_params(p)


def test_a_module_missing_an_interface_member_is_named(monkeypatch):
    class Wider(Adapter):
        def extra(self) -> None: ...

    with pytest.raises(VovnetError, match=r"^vovnet/tasks/mmmu/adapter.py: missing extra \(the Wider interface in "):
        get_adapter("mmmu", Wider)


def _imports(source: str, package: str) -> set[str]:
    """Every module a file in `package` imports (absolute or relative, at any depth), and the text of any
    by-name import."""
    tree, out = ast.parse(source), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
            out.add(ast.unparse(node.args[0]))
    return out


def test_nothing_below_the_tasks_imports_them_but_the_registry():
    """The one-way plugin boundary: the stages load a task's plugin (through the registry) and hand it down."""
    below = [p for p in (ROOT / "vovnet").rglob("*.py") if "tasks" not in p.relative_to(ROOT / "vovnet").parts]
    reaching = {
        p.relative_to(ROOT).as_posix(): sorted(m for m in _imports(p.read_text(), _package(p)) if "vovnet.tasks" in m)
        for p in below
        if p.name != "registry.py"
    }
    assert {p: m for p, m in reaching.items() if m} == {}
    registry = ROOT / "vovnet" / "registry.py"
    assert any("vovnet.tasks" in m for m in _imports(registry.read_text(), "vovnet"))  # by-name imports are seen


def _package(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parts[:-1])


def test_the_boundary_check_sees_function_level_and_relative_imports():
    source = "def f():\n    from ..tasks.shapes_vqa import adapter\n    return adapter\n"
    assert "vovnet.tasks.shapes_vqa" in _imports(source, "vovnet.model")
    assert "vovnet.tasks.protocols" in _imports("import vovnet.tasks.protocols\n", "vovnet.data")
