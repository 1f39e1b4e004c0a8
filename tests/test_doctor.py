import json

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
    data = [x for x in lines if x.startswith("[fail] dvc.lock")]  # staleness from DVC, not from which files exist
    assert len(model) == 1 and "models/qwen3-vl-8b-instruct not found" in model[0]
    assert data == ["[fail] dvc.lock: none; nothing was reproduced or pulled here (`dvc pull`, or `dvc repro`)"]
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


def test_doctor_fails_the_pypi_wheel_on_a_mocked_v100_naming_sm70_and_the_cu126_install(tmp_path, monkeypatch, capsys):
    from test_gpu_env import V100, mock_gpus

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("launch:\n  processes: auto\n")
    mock_gpus(monkeypatch, [V100] * 4)  # the arch list is the installed wheel's (PyPI: sm_75 and up)
    assert run_doctor("params.yaml") == 1
    gpu = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[fail] gpu:")]
    assert len(gpu) == 1 and "GPUs 0-3 (Tesla V100-SXM2-32GB) is sm_70" in gpu[0]
    assert "CUDA 12.6" in gpu[0] and "pip install -r requirements-gpu.txt" in gpu[0]


def test_plan_that_does_not_fit_fails_doctor_and_plan_with_one_line(tmp_path, monkeypatch, capsys):
    from test_gpu_env import CU126_ARCHS, V100_16, mock_gpus, paper_params

    from vovnet.doctor import run_plan

    params = paper_params(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # YAML 1.2 reads JSON
    mock_gpus(monkeypatch, [V100_16] * 8, arch=CU126_ARCHS)
    assert run_plan(str(tmp_path / "params.yaml")) == 1
    out = capsys.readouterr().out.splitlines()
    fails = [x for x in out if x.startswith("[fail] plan: ")]
    assert [x.split(" needs ")[0] for x in fails] == [
        "[fail] plan: train under ZeRO-2 (" + params["launch"]["config_file"] + ", with checkpointing)",
        "[fail] plan: evaluate@ / predict at batch 8 x 4128 tokens",
    ]
    assert "of 14.4 usable (8 x 16.0 GiB); largest term weights" in fails[0]
    # the 16 GB verdict of each shipped launch config
    assert sum(x.startswith("16 GB V100 (8 x 16 GiB): configs/accelerate/") for x in out) == 3


def test_doctor_reads_staleness_from_dvc_status_missing_outputs_want_a_pull(tmp_path, monkeypatch):
    from vovnet import doctor

    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    status = {
        "normalize@mmmu": [{"changed outs": {"data/processed/mmmu": "deleted"}}],
        "train": [{"changed deps": {"params.yaml": {"modified": ["train.lr"]}}}],
    }
    monkeypatch.setattr(doctor, "_dvc", lambda *args: (0, json.dumps(status)))
    assert doctor.pipeline_state(tmp_path / "dvc.lock") == [
        ("fail", "dvc status: 1 stage(s) lack outputs here: normalize@mmmu (`dvc pull`)"),
        ("warn", "dvc status: 1 stage(s) would rerun: train"),
    ]
    monkeypatch.setattr(doctor, "_dvc", lambda *args: (0, "{}"))
    assert doctor.pipeline_state(tmp_path / "dvc.lock") == [("ok", "dvc status: pipeline up to date")]


def test_doctor_asks_for_linked_cache_outputs_and_a_remote_experiments_can_see(tmp_path, monkeypatch):
    from conftest import sh

    from vovnet.doctor import _cache_links, _experiment_remote

    monkeypatch.chdir(tmp_path)
    sh(tmp_path, "git", "init", "-q")
    sh(tmp_path, "dvc", "init", "-q")
    sh(tmp_path, "git", "commit", "-qm", "dvc init")
    status, msg = _cache_links()
    assert status == "warn" and "dvc config --local cache.type reflink,hardlink,symlink" in msg
    sh(tmp_path, "dvc", "config", "--local", "cache.type", "reflink,hardlink,symlink")
    assert _cache_links()[0] == "ok"
    assert _experiment_remote()[0] == "ok"
    sh(tmp_path, "dvc", "remote", "add", "-d", "store", str(tmp_path / "store"))  # not committed
    status, msg = _experiment_remote()
    assert status == "warn" and "dvc remote add --local" in msg
    sh(tmp_path, "git", "commit", "-qam", "remote")
    assert _experiment_remote()[0] == "ok"
