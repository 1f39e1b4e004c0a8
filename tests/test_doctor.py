from vovnet.doctor import run_doctor


def test_doctor_names_missing_model_and_data_in_one_line_each(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "model:\n  name: models/qwen3-vl-8b-instruct\n"
        "evaluation:\n  sets:\n    mmmu: {dataset: mmmu, split: validation, protocol: mmmu, images: mmmu}\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert run_doctor("params.yaml") == 1
    lines = capsys.readouterr().out.splitlines()
    model = [x for x in lines if x.startswith("[fail] model")]
    data = [x for x in lines if x.startswith("[fail] data") and "mmmu_validation.jsonl" in x]
    assert len(model) == 1 and "models/qwen3-vl-8b-instruct not found" in model[0]
    assert len(data) == 1 and "dvc pull" in data[0]
    assert "[ok] HF_HUB_OFFLINE=1" in lines
    assert any(x.startswith("[warn] HF_DATASETS_OFFLINE") for x in lines)
