"""policy.cost_shift is an inference-time knob: only evaluate@ declares it, the run fingerprint and the saved
model's config leave it out, and a model folder saved before (with it in its config) still loads."""

import json

import torch
from conftest import ROOT

from vovnet.config import POLICY_INFERENCE_KEYS, load_params, read_yaml
from vovnet.deps import interpolate, resolve_stages
from vovnet.model.factory import CONFIG_FILE, build_vovnet, load_vovnet, save_vovnet
from vovnet.resume import run_fingerprint


def stages_declaring(key: tuple, params: dict) -> set[str]:
    """The stages whose dvc.yaml params cover `key` (or a key under it): what DVC marks stale when it changes."""
    dvc_yaml = read_yaml(ROOT / "dvc.yaml")
    hit = set()
    for s in resolve_stages(dvc_yaml, params):
        body = dvc_yaml["stages"][s.group].get("do", dvc_yaml["stages"][s.group])
        for entry in body.get("params") or []:
            declared = tuple(interpolate(str(entry), params, s.key, s.item).split("."))
            if declared[: len(key)] == key or key[: len(declared)] == declared:
                hit.add(s.name)
    return hit


def test_changing_cost_shift_reruns_evaluation_only(params):
    stale = stages_declaring(("policy", "cost_shift"), params)
    evaluations = {f"evaluate@{name}" for name in params["evaluation"]["sets"]}
    assert stale == evaluations
    # the keys training reads still retrain (the policy section was declared whole before)
    assert "train" in stages_declaring(("policy", "lambda_cost"), params)
    assert "train" in stages_declaring(("policy", "gumbel_tau"), params)


def test_run_fingerprint_ignores_inference_knobs(tmp_path, params):
    p = json.loads(json.dumps(params))
    for key in ("train_file", "policy_file"):
        (tmp_path / key).write_text('{"id": 1}\n')
        p["train"][key] = str(tmp_path / key)
    before = run_fingerprint(p)
    p["policy"]["cost_shift"] = 3.5
    assert run_fingerprint(p) == before
    p["policy"]["lambda_cost"] = 0.5  # a training key: another run
    assert run_fingerprint(p) != before


def test_saved_config_leaves_out_cost_shift_and_old_folders_load(tmp_path, tiny_model_dir):
    params = load_params(ROOT / "params.yaml")
    params["model"]["name"] = str(tiny_model_dir)
    params["policy"]["cost_shift"] = 2.0
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    out = tmp_path / "vovnet"
    save_vovnet(model, processor, params, out)
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert not set(POLICY_INFERENCE_KEYS) & set(saved["policy"])
    assert saved["policy"]["lambda_cost"] == params["policy"]["lambda_cost"]
    # a folder written before the change carries policy.cost_shift: it loads as it did
    saved["policy"]["cost_shift"] = 0.7
    (out / CONFIG_FILE).write_text(json.dumps(saved))
    loaded, _, trained = load_vovnet(out, params)
    assert trained["policy"]["cost_shift"] == 0.7
    assert torch.equal(loaded.head.state_dict()["mlp.0.weight"], model.head.state_dict()["mlp.0.weight"])
