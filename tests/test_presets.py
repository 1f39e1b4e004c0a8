"""`python -m vovnet preset` edits params.yaml in place: byte-exact round trip, only preset values touched."""

import shutil
import subprocess
import sys

import pytest
from helpers import ROOT

from vovnet import VovnetError
from vovnet.config import load_params
from vovnet.presets import _overlay, presets, write_preset
from vovnet.registry import with_defaults


@pytest.fixture
def params_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_bytes((ROOT / "params.yaml").read_bytes())
    return p


@pytest.mark.parametrize("name", [n for n in presets() if n != "sample"])
def test_switch_and_back_to_sample_gives_the_original_bytes(params_file, name):
    original = params_file.read_bytes()
    write_preset(name, params_file)
    changed = params_file.read_text()
    assert changed.splitlines()[0].startswith(f"# VoVNet parameters. Preset: {name}")
    write_preset("sample", params_file)
    assert params_file.read_bytes() == original


def test_sample_on_the_default_file_changes_nothing(params_file):
    original = params_file.read_bytes()
    write_preset("sample", params_file)
    assert params_file.read_bytes() == original


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("name", presets())
def test_preset_sets_its_values_and_only_those(params_file, name):
    text = params_file.read_text().replace("  lambda_cost: 0.1\n", "  lambda_cost: 0.5   # my sweep\n")
    params_file.write_text(text)
    before = _flatten(load_params(params_file))
    write_preset(name, params_file)
    after_text = params_file.read_text()
    after = _flatten(load_params(params_file))
    wanted = _flatten(with_defaults(_overlay(name)))  # entries over their tasks' defaults.yaml
    for key, value in wanted.items():
        if not key.startswith("datasets."):
            assert after[key] == value, key
    changed = {k for k in after if before.get(k) != after[k]}
    # an evaluation set the preset adds also gets the schema's defaults (e.g. prompt: standard)
    named_sets = {".".join(k.split(".")[:3]) for k in wanted if k.startswith("evaluation.sets.")}
    new_in_named_set = {k for k in changed if k not in before and ".".join(k.split(".")[:3]) in named_sets}
    assert {k for k in changed - new_in_named_set if not k.startswith("datasets.")} <= set(wanted)
    assert "  lambda_cost: 0.5   # my sweep\n" in after_text
    assert "  sources: [" in after_text and "# V100: sdpa (no FlashAttention-2)" in after_text
    assert set(load_params(params_file)["datasets"]) == set(_overlay(name)["datasets"])


def test_a_base_preset_is_merged_not_replaced():
    assert list(_overlay("fast_dev")["datasets"]) == list(_overlay("paper")["datasets"])
    assert _overlay("fast_dev")["datasets"]["mmbench"]["max_samples"] == 200
    assert _overlay("fast_dev")["datasets"]["mmbench"]["source"] == _overlay("paper")["datasets"]["mmbench"]["source"]


def test_a_null_entry_drops_the_base_presets_entry_and_a_typo_is_an_error(tmp_path):
    from vovnet.presets import PRESET_DIR

    shutil.copy(PRESET_DIR / "demo.yaml", tmp_path / "demo.yaml")
    (tmp_path / "child.yaml").write_text("base: demo\ndatasets:\n  demo: null\n  other: {adapter: llava}\n")
    assert list(_overlay("child", tmp_path)["datasets"]) == ["other"]
    (tmp_path / "typo.yaml").write_text("base: demo\ndatasets:\n  dmeo: null\n")
    with pytest.raises(VovnetError, match=r"^presets/typo.yaml: datasets.dmeo: null drops .* preset 'demo' has no"):
        _overlay("typo", tmp_path)
    (tmp_path / "orphan.yaml").write_text("evaluation:\n  sets:\n    demo: null\n")
    with pytest.raises(VovnetError, match=r"evaluation.sets.demo: null drops .*, but it has no base preset$"):
        _overlay("orphan", tmp_path)


def test_unknown_preset_and_invalid_result_leave_the_file(params_file, tmp_path):
    original = params_file.read_bytes()
    with pytest.raises(VovnetError, match="unknown preset 'nosuch' \\(known: "):
        write_preset("nosuch", params_file)
    params_file.write_text(params_file.read_text().replace("  mode: soft ", "  mode: hard "))
    broken = params_file.read_bytes()
    with pytest.raises(
        VovnetError, match=r"^preset sample: .*params.yaml: policy.mode: must be 'soft' or 'gumbel', got 'hard'$"
    ):
        write_preset("sample", params_file)
    assert params_file.read_bytes() == broken != original
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_preset_cli_one_line(params_file):
    p = subprocess.run(
        [sys.executable, "-m", "vovnet", "preset", "paper", "--params", str(params_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and "paper" in p.stdout
    assert load_params(params_file)["model"]["name"] == "models/qwen3-vl-8b-instruct"


def test_a_preset_with_other_datasets_and_back(params_file, tmp_path):
    presets_dir = tmp_path / "presets"
    presets_dir.mkdir()
    (presets_dir / "sample.yaml").write_bytes((ROOT / "presets" / "sample.yaml").read_bytes())
    (presets_dir / "gen.yaml").write_text(
        "datasets:\n  gen:\n    adapter: mmbench\n    source: generate\n    splits: [train, heldout]\n"
        "    lang: en   # a comment on the section's last line\n"
        "merge:\n  sources: [gen/train]\n  guard_sets: []\n"
        "evaluation:\n  sets:\n    gen: {dataset: gen, split: heldout, protocol: mmbench, images: gen}\n"
    )
    original = params_file.read_bytes()
    write_preset("gen", params_file, presets_dir)
    text = params_file.read_text()
    assert text.startswith("# VoVNet parameters. Preset: gen.\n")
    assert "    splits: [train, heldout]\n    lang: en   # a comment on the section's last line\n\nnormalize:" in text
    assert "  guard_sets: []\n" in text
    params = load_params(params_file)
    assert set(params["datasets"]) == {"gen"} and set(params["evaluation"]["sets"]) == {"gen"}
    write_preset("sample", params_file, presets_dir)
    assert params_file.read_bytes() == original
