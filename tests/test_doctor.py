from vovnet.doctor import run_doctor


def test_doctor_names_missing_model_and_data_in_one_line_each(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "model:\n  name: models/qwen3-vl-8b-instruct\n"
        "evaluation:\n  sets:\n    mmmu: {dataset: mmmu, split: validation, protocol: mmmu, images: mmmu}\n"
    )
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


def test_doctor_says_which_launch_dvc_repro_runs_and_the_batch_per_process(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("vovnet.launch.visible_cuda_devices", lambda: 0)  # as on this CPU machine
    (tmp_path / "params.yaml").write_text("train:\n  batch_size: 8\nlaunch:\n  processes: 2\n")
    run_doctor("params.yaml")
    lines = [x for x in capsys.readouterr().out.splitlines() if "launch:" in x]
    assert lines == [
        "[ok] launch: dvc repro runs train and evaluate@ as 2 processes (CPU, gloo) under torchrun; "
        "train: global batch 8 = 2 process(es) x 4 per forward x 1 accumulated"
    ]
    (tmp_path / "params.yaml").write_text("train:\n  batch_size: 3\nlaunch:\n  processes: 2\n")
    run_doctor("params.yaml")
    lines = [x for x in capsys.readouterr().out.splitlines() if "launch:" in x]
    assert lines == [
        "[fail] launch: params.yaml: train.batch_size 3 does not divide over 2 processes "
        "(the global batch must be a multiple of the process count)"
    ]
