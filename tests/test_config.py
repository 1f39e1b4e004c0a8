import pytest

from vovnet import VovnetError
from vovnet.config import dataset_config, load_params


def test_exp_run_float_written_as_1e_05_reads_as_float(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  lr: 1e-05\n  head_lr: '2e-3'\n  batch_size: 2.0\n")
    params = load_params(p)
    assert params["train"]["lr"] == pytest.approx(1e-5) and isinstance(params["train"]["lr"], float)
    assert params["train"]["head_lr"] == pytest.approx(2e-3)
    assert params["train"]["batch_size"] == 2 and isinstance(params["train"]["batch_size"], int)


def test_bad_type_is_one_line_error(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  lr: fast\n")
    with pytest.raises(VovnetError, match=r"train\.lr: expected float"):
        load_params(p)


def test_unknown_adapter_and_negative_max_samples():
    with pytest.raises(VovnetError, match="unknown adapter 'coco'"):
        dataset_config("mine", {"adapter": "coco", "source": "x"})
    with pytest.raises(VovnetError, match="max_samples: must be >= 0"):
        dataset_config("mmmu", {"source": "x", "max_samples": -3})


def test_unknown_key_in_a_section(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(VovnetError, match="unknown key train.learning_rate"):
        load_params(p)


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("VOVNET_HF_DATASET_ID_MMMU", "me/mmmu-mirror")
    monkeypatch.setenv("VOVNET_MMBENCH_LITE_URL", "https://example.org/lite.tsv")
    assert dataset_config("mmmu", {"source": "x"})["source"] == "hf:me/mmmu-mirror"
    assert dataset_config("mmbench_lite", {"source": "x"})["source"] == "https://example.org/lite.tsv"


def test_presets_are_valid(params):
    from pathlib import Path

    from vovnet.presets import PRESETS, apply_preset

    for name in PRESETS:
        merged = apply_preset(name, Path("params.yaml").read_text())
        assert merged["datasets"]
