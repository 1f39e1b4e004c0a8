"""The offline route through the Hugging Face cache, the recorded commit, and the hub's errors in one line.

The fixture cache has huggingface_hub's own layout: datasets--<org>--<name>/refs/main holding the commit,
snapshots/<commit>/<file> as relative symlinks into blobs/<sha256>. Everything runs offline."""

import fnmatch
import hashlib
import json
import logging
import os
import shlex

import pytest
from conftest import ds_cfg

from vovnet import VovnetError
from vovnet.data.download import fetch, read_record
from vovnet.data.interfaces import Adapter
from vovnet.registry import get_adapter

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MMSTAR_CARD = (
    "---\nconfigs:\n- config_name: val\n  data_files:\n  - split: val\n    path: mmstar.parquet\n---\n# MMStar\n"
)


def hub_cache(root, repo_id, files, commit=COMMIT, ref="main"):
    """A hub cache as huggingface_hub writes it; returns the snapshot folder."""
    repo = root / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    for rel, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def mmstar_files():
    return {
        "README.md": MMSTAR_CARD.encode(),
        "mmstar.parquet": b"PAR1-mmstar",
        "onnx/other.parquet": b"PAR1-other",  # not asked for
    }


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def mmstar_cfg(**kw):
    return ds_cfg("mmstar", source="hf:Lin-Chen/MMStar", splits=["val"], **kw)


def adapter(cfg):
    return get_adapter(cfg["adapter"], Adapter)


def advice_of(message: str) -> tuple[str, list[str]]:
    """The repo id and --include patterns of the `hf download` command an error advises."""
    cmd = shlex.split(message.split("`hf download ")[1].split("`")[0])
    return cmd[cmd.index("--repo-type") + 2], [cmd[i + 1] for i, a in enumerate(cmd) if a == "--include"]


def test_the_advice_run_into_the_cache_makes_the_offline_fetch_pass(tmp_path, offline):
    cfg = mmstar_cfg()
    raw = tmp_path / "raw"
    with pytest.raises(VovnetError, match=r"not in the local Hugging Face cache.*README.md` first") as first:
        fetch("mmstar", cfg, raw, adapter(cfg))
    assert "\n" not in str(first.value) and not raw.exists()
    # step one of the advice: the card alone, into the cache
    hub_cache(offline, "Lin-Chen/MMStar", {"README.md": MMSTAR_CARD.encode()})
    with pytest.raises(VovnetError, match=r"lacks mmstar.parquet") as second:
        fetch("mmstar", cfg, raw, adapter(cfg))
    repo_id, include = advice_of(str(second.value))
    assert repo_id == "Lin-Chen/MMStar" and include == ["README.md", "mmstar.parquet"]  # from the card
    # the advised command's effect: the files its patterns match (the client's fnmatch), into the cache
    everything = mmstar_files()
    advised = {r: d for r, d in everything.items() if any(fnmatch.fnmatchcase(r, p) for p in include)}
    hub_cache(offline, "Lin-Chen/MMStar", advised)
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is True
    assert (raw / "mmstar.parquet").read_bytes() == b"PAR1-mmstar" and not (raw / "mmstar.parquet").is_symlink()
    assert not (raw / "onnx").exists()
    assert read_record(raw)["commit"] == COMMIT
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is False  # the same commit again: nothing written


def test_the_recorded_commit_survives_a_rerun_and_a_pin(tmp_path, offline):
    hub_cache(offline, "Lin-Chen/MMStar", mmstar_files())
    cfg, raw = mmstar_cfg(), tmp_path / "raw"
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is True
    record = (raw / "SOURCE.json").read_bytes()
    assert json.loads(record)["commit"] == COMMIT
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is False and (raw / "SOURCE.json").read_bytes() == record
    pinned = mmstar_cfg(revision=COMMIT)  # `vovnet pin` wrote the commit: the same data, nothing rewritten
    assert fetch("mmstar", pinned, raw, adapter(pinned)) is False and (raw / "SOURCE.json").read_bytes() == record
    other = "f" * 40  # another pinned commit that this machine has not got: one line, the data untouched
    with pytest.raises(VovnetError, match=r"hf:Lin-Chen/MMStar is not in the local Hugging Face cache"):
        fetch("mmstar", mmstar_cfg(revision=other), raw, adapter(pinned))
    assert (raw / "SOURCE.json").read_bytes() == record


def test_a_pulled_hub_download_is_kept_offline_only_while_params_match_the_lock(tmp_path, offline, caplog):
    hub_cache(offline, "Lin-Chen/MMStar", mmstar_files())
    cfg, raw = mmstar_cfg(), tmp_path / "raw"
    fetch("mmstar", cfg, raw, adapter(cfg))
    (offline / "datasets--Lin-Chen--MMStar").rename(tmp_path / "elsewhere")  # a server without the cache
    with caplog.at_level(logging.WARNING):
        assert fetch("mmstar", cfg, raw, adapter(cfg), locked=True) is False
    assert "params match dvc.lock: keeping" in caplog.text and (raw / "mmstar.parquet").exists()
    with pytest.raises(VovnetError, match=r"not in the local Hugging Face cache"):
        fetch("mmstar", cfg, raw, adapter(cfg), locked=False)


def test_source_may_name_a_cache_snapshot_folder_whose_files_are_links_into_blobs(tmp_path):
    snapshot = hub_cache(tmp_path / "hub", "Lin-Chen/MMStar", mmstar_files())
    raw = tmp_path / "raw"
    assert fetch("mmstar", ds_cfg("mmstar", source=str(snapshot), splits=["val"]), raw) is True
    assert (raw / "mmstar.parquet").read_bytes() == b"PAR1-mmstar"
    assert read_record(raw)["commit"] == COMMIT
    elsewhere = tmp_path / "secret.txt"  # a link leaving both the snapshot and the blobs is still refused
    elsewhere.write_text("x")
    (snapshot / "leak.txt").symlink_to(elsewhere)
    with pytest.raises(VovnetError, match=r"symlink leak.txt points outside the source folder"):
        fetch("mmstar", ds_cfg("mmstar", source=str(snapshot), splits=["val"]), tmp_path / "raw2")


def http_error(cls, status, server_message, **kw):
    import httpx2

    request = httpx2.Request("GET", "https://cdn.example/signed?X-Amz-Signature=secret")
    response = httpx2.Response(status, request=request)
    return cls(f"{status} Client Error. (Request ID: abc)\n\nmore", response=response, server_message=server_message)


@pytest.mark.parametrize(
    "make, expected",
    [
        (
            lambda e: http_error(e.RevisionNotFoundError, 404, "Invalid rev id: nope"),
            "hf:Lin-Chen/MMStar@nope: HTTP 404: no revision 'nope' (Invalid rev id: nope)",
        ),
        (
            lambda e: http_error(e.GatedRepoError, 401, "Access to dataset Lin-Chen/MMStar is restricted."),
            "hf:Lin-Chen/MMStar@nope: HTTP 401: gated dataset: accept its terms at "
            "https://huggingface.co/datasets/Lin-Chen/MMStar and set HF_TOKEN "
            "(Access to dataset Lin-Chen/MMStar is restricted.)",
        ),
        (
            lambda e: http_error(e.HfHubHTTPError, 500, None),
            "hf:Lin-Chen/MMStar@nope: HTTP 500: HfHubHTTPError",
        ),
    ],
)
def test_hub_errors_keep_their_reason_in_one_line_without_the_url(make, expected):
    import huggingface_hub.errors as errors

    from vovnet.data.hub_fetch import hub_error

    message = str(hub_error(make(errors), "Lin-Chen/MMStar", "nope"))
    assert message == expected and "signed" not in message


def test_resolving_the_revision_asks_the_hub_once_and_fetches_at_that_commit(tmp_path, monkeypatch):
    """Online: dataset_info resolves `main` once; the card and the files are then fetched at the commit."""
    import huggingface_hub

    calls = []

    class Info:
        sha = COMMIT

    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "dataset_info",
        lambda self, repo, revision, token: calls.append(("info", revision)) or Info(),
    )

    def card(repo, filename, repo_type, revision, local_dir, token):
        calls.append(("card", revision))
        (local_dir / filename).write_text(MMSTAR_CARD)

    def files(repo, repo_type, revision, local_dir, allow_patterns, token):
        calls.append(("files", revision, tuple(allow_patterns)))
        (local_dir / "mmstar.parquet").write_bytes(b"PAR1-mmstar")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", card)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", files)
    cfg, raw = mmstar_cfg(), tmp_path / "raw"
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is True
    assert calls == [("info", None), ("card", COMMIT), ("files", COMMIT, ("README.md", "mmstar.parquet"))]
    assert read_record(raw)["commit"] == COMMIT
    calls.clear()
    assert fetch("mmstar", cfg, raw, adapter(cfg)) is False and calls == [("info", None)]  # main still there


def test_no_request_urls_at_info_and_each_client_warning_once(capfd):
    from huggingface_hub.utils import logging as hub_logging

    from vovnet.data.hub_fetch import quiet_logs

    logging.basicConfig(level=logging.INFO, force=True)
    quiet_logs()
    logging.getLogger("httpx2").info("HTTP Request: GET https://cdn.example/signed?X-Amz-Signature=secret")
    hub_logging.get_logger("huggingface_hub.file_download").warning("resuming download")
    err = capfd.readouterr().err
    assert "signed" not in err and err.count("resuming download") == 1


def test_download_model_fetches_root_files_only_at_one_commit_and_a_rerun_fetches_nothing(tmp_path, monkeypatch):
    import huggingface_hub

    from vovnet.model import download

    tree = [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "onnx/model.json",
        "original/consolidated.safetensors",
    ]
    calls = []

    class Info:
        sha = COMMIT
        siblings = [type("Sibling", (), {"rfilename": f}) for f in tree]

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo, revision, token: Info())

    def snapshot(repo, revision, local_dir, allow_patterns, token):
        calls.append((revision, list(allow_patterns)))
        local_dir.mkdir(parents=True, exist_ok=True)  # as the client does
        for f in allow_patterns:
            (local_dir / f).write_text("{}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    monkeypatch.setattr(download, "check_model_dir", lambda path: None)
    assert download.download_model("Qwen/Tiny", tmp_path / "m") == COMMIT
    assert calls == [(COMMIT, ["config.json", "model.safetensors", "tokenizer.json"])]
    assert json.loads((tmp_path / "m" / "SOURCE.json").read_text())["commit"] == COMMIT
    assert download.download_model("Qwen/Tiny", tmp_path / "m") == COMMIT and len(calls) == 1
