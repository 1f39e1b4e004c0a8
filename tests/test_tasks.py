"""The task registry: one folder per benchmark under vovnet/tasks/, its modules checked against the
interfaces, its defaults.yaml under params.yaml's entries."""

import pytest
from helpers import ROOT

from vovnet import VovnetError, tasks
from vovnet.config import Dataset, EvalSet, load_params, read_yaml
from vovnet.tasks import defaults, with_defaults
from vovnet.tasks.adapters import get_adapter
from vovnet.tasks.protocols import get_protocol
from vovnet.tasks.samples import get_sample_maker

FOLDERS = sorted(p.name for p in (ROOT / "vovnet" / "tasks").iterdir() if (p / "__init__.py").exists())


def test_every_folder_is_a_task_with_at_least_an_adapter_or_a_protocol():
    assert set(FOLDERS) == set(tasks.ADAPTERS) | set(tasks.PROTOCOLS)
    assert {"mmbench", "mmbench_lite", "mmmu", "textvqa", "llava", "shapes_vqa"} <= set(tasks.ADAPTERS)


@pytest.mark.parametrize("name", tasks.ADAPTERS)
def test_adapters_load_with_every_interface_member(name):
    adapter = get_adapter(name)
    for member in ("source_files", "iter_rows", "build", "hf_configs"):
        assert callable(getattr(adapter, member))


@pytest.mark.parametrize("name", tasks.PROTOCOLS)
def test_protocols_load_with_a_writer_and_breakdowns(name):
    protocol = get_protocol(name)
    assert callable(protocol.write_submission) and isinstance(protocol.BREAKDOWNS, tuple)


def test_sample_makers_run_in_a_strict_order():
    orders = [get_sample_maker(n).ORDER for n in tasks.SAMPLES]
    assert len(set(orders)) == len(orders)
    # Lite's sample is drawn from MMBench's, so it comes after it
    assert get_sample_maker("mmbench_lite").ORDER > get_sample_maker("mmbench").ORDER


def test_unknown_names_are_one_line_errors():
    with pytest.raises(VovnetError, match=r"^params.yaml: unknown evaluation protocol 'nosuch' \(known: mmbench, "):
        get_protocol("nosuch")
    with pytest.raises(VovnetError, match=r"^params.yaml: unknown adapter 'short_answer' \(known: easy_vqa, llava, "):
        get_adapter("short_answer")  # a protocol-only folder has no adapter


@pytest.mark.parametrize("name", FOLDERS)
def test_defaults_files_validate(name):
    d = defaults(name)
    assert set(d) == {"dataset", "evaluation_set"}
    Dataset.model_validate(d["dataset"])  # every key known, every value valid
    assert set(d["evaluation_set"]) <= set(EvalSet.model_fields) - {"dataset", "images"}
    assert "source" not in d["dataset"], "a dataset's source is always a params.yaml choice"
    if name in tasks.ADAPTERS and name != "llava":  # llava is training data: no evaluation set
        assert d["evaluation_set"]["protocol"] in tasks.PROTOCOLS


def test_params_entries_start_from_their_task_defaults(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(
        "datasets:\n  mine:\n    adapter: mmmu\n    source: x\n    splits: [dev]\n"
        "  tv:\n    adapter: textvqa\n    source: y\n"
        "evaluation:\n  sets:\n    s:\n      dataset: tv\n      images: tv\n"
    )
    params = load_params(p)
    assert params["datasets"]["mine"]["subset"] == "all" and params["datasets"]["mine"]["splits"] == ["dev"]
    assert params["datasets"]["tv"]["splits"] == ["validation"]
    assert params["evaluation"]["sets"]["s"] == {
        "dataset": "tv",
        "images": "tv",
        "split": "validation",
        "protocol": "textvqa",
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
