"""Vision-token pruning on the tiny Qwen3-VL (vovnet/model/pruning.py): share 1.0 is FULL token for token (with
the text pass's prefix shared, text_first, and without it, image_first), kept
tokens keep their M-RoPE positions and DeepStack rows, counts follow the share, and the attention rule's layer-K
scores are the eager attention's own."""

import pytest
import torch

from vovnet.config import load_params
from vovnet.io_utils import read_jsonl
from vovnet.model import pruning
from vovnet.model.encoding import Encoder, RecordDataset
from vovnet.model.factory import build_vovnet
from vovnet.model.generation import TokenIds, _vision_extra, answer_action, text_prefill
from vovnet.model.prefix_reuse import _rope_model


def _built(workspace, order: str | None):
    """The tiny model, three sample records with images encoded in `order` (None: the model's own), and the
    text pass's prefill."""
    import os

    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        params = load_params("params.yaml")
        torch.manual_seed(0)
        model, processor = build_vovnet(params)
        model.eval()
        budgets = {**params["vision_budget"], "full": {"min_pixels": 16384, "max_pixels": 65536}}
        encoder = Encoder(processor, budgets, None, order or model.prompt_order)
        records = [r for r in read_jsonl(params["train"]["train_file"]) if r["images"]][:3]
        encs = [RecordDataset(records, encoder, with_target=False)[i] for i in range(len(records))]
    finally:
        os.chdir(cwd)
    ids = TokenIds.of(processor)
    prefill = text_prefill(model.lm, [e["no"] for e in encs], ids.pad, ids.image, torch.device("cpu"))
    return model, processor, encs, ids, prefill


@pytest.fixture(scope="module")
def tiny(workspace):
    return _built(workspace, None)


def _full(encs):
    return [e["full"] for e in encs]


@pytest.mark.parametrize("method", pruning.METHODS)
def test_share_one_is_always_full_token_for_token(tiny, method):
    model, _, encs, ids, prefill = tiny
    rows = list(range(len(encs)))
    full = answer_action(model, prefill, rows, _full(encs), "full", ids, 12)
    rule = pruning.PruneRule(method, 1.0, layer=1)
    pruned, counts = pruning.answer_pruned(model.lm, prefill, rows, _full(encs), ids, 12, rule, True)
    assert pruned == full
    assert counts == [e["full"]["vision_tokens"] for e in encs]


@pytest.fixture(scope="module")
def tiny_image_first(workspace):
    """The same model with prompts in image_first order: no text prefix is shared with the vision branches."""
    return _built(workspace, "image_first")


@pytest.mark.parametrize("method", pruning.METHODS)
def test_share_one_is_always_full_token_for_token_without_a_shared_prefix(tiny_image_first, method):
    model, _, encs, ids, prefill = tiny_image_first
    assert prefill.prefix_end is None  # image_first: what evaluation then passes as shared=False
    rows = list(range(len(encs)))
    full = answer_action(model, prefill, rows, _full(encs), "full", ids, 12)
    rule = pruning.PruneRule(method, 1.0, layer=1)
    assert pruning.answer_pruned(model.lm, prefill, rows, _full(encs), ids, 12, rule, False)[0] == full


def _pruned(tiny, method, share):
    model, _, encs, ids, prefill = tiny
    rows = list(range(len(encs)))
    seq, extra = pruning._sequences(model.lm, prefill, rows, _full(encs), ids.pad, ids.image, True)
    base = _rope_model(model.lm)
    feats = base.get_image_features(extra["pixel_values"], extra["image_grid_thw"], return_dict=True)
    per_image = (extra["image_grid_thw"].prod(-1) // base.visual.spatial_merge_size**2).tolist()
    spans = pruning._image_spans(seq, ids.image, per_image)
    rule = pruning.PruneRule(method, share, layer=1, seed=3)
    if method == "random":
        keep = pruning._random_keep(seq, spans, rule)
    else:
        keep = pruning._attention_keep(model.lm, seq, spans, feats, rule)
    kept, kept_feats, counts = pruning.prune(seq, spans, keep, feats, ids.pad)
    return seq, spans, keep, feats, kept, kept_feats, counts, per_image


@pytest.mark.parametrize("method", pruning.METHODS)
@pytest.mark.parametrize("share", [0.25, 0.5])
def test_kept_tokens_keep_their_positions_and_deepstack_rows(tiny, method, share):
    _, _, encs, ids, _ = tiny
    seq, spans, keep, feats, kept, kept_feats, counts, per_image = _pruned(tiny, method, share)
    assert counts == [pruning.kept_count(n, share) for n in per_image]  # one image per record here
    assert all(c < n for c, n in zip(counts, per_image))  # something was dropped
    assert ((kept.ids == ids.image).sum(1)).tolist() == counts
    assert len(feats.deepstack_features) >= 1
    for r, (cols, k) in enumerate(zip(spans, keep)):
        cols, k = cols[0], k[0]
        valid = kept.mask[r, kept.prefix :].bool()
        new_ids, new_pos = kept.ids[r][valid], kept.positions[:, r][:, valid]
        old_valid = seq.mask[r, seq.prefix :].bool()
        old_cols = old_valid.nonzero().flatten()
        want = [c for c in old_cols.tolist() if c not in set(cols.tolist()) or c in set(cols[k].tolist())]
        assert torch.equal(new_ids, seq.ids[r, want])
        assert torch.equal(new_pos, seq.positions[:, r, want])  # text after the image keeps its positions too
        assert torch.equal(kept_feats.pooler_output[r], feats.pooler_output[r][k])
        for level, new_level in zip(feats.deepstack_features, kept_feats.deepstack_features):
            assert torch.equal(new_level[r], level[r][k])


def test_attention_scores_are_the_eager_attention_weights(tiny):
    """SDPA returns no weights: the rule's own layer-K scores match eager attention's over the whole
    sequence (prefix included)."""
    model, _, encs, ids, prefill = tiny
    rows = list(range(len(encs)))
    seq, extra = pruning._sequences(model.lm, prefill, rows, _full(encs), ids.pad, ids.image, True)
    base = _rope_model(model.lm)
    feats = base.get_image_features(extra["pixel_values"], extra["image_grid_thw"], return_dict=True)
    scores = pruning._layer_scores(model.lm, seq, feats, 1)
    full_ids = torch.cat([prefill.input_ids[:, : seq.prefix], seq.ids], dim=1)
    mm = (full_ids == ids.image).int()
    pos, _ = base.get_rope_index(full_ids, mm, extra["image_grid_thw"], None, seq.mask)
    lm_cfg = base.language_model.config
    old = lm_cfg._attn_implementation
    lm_cfg._attn_implementation = "eager"
    try:
        out = model.lm(
            input_ids=full_ids,
            attention_mask=seq.mask,
            position_ids=pos,
            output_attentions=True,
            **_vision_extra(_full(encs), torch.device("cpu")),
            mm_token_type_ids=mm,
        )
    finally:
        lm_cfg._attn_implementation = old
    eager = out.attentions[1][:, :, -1].mean(1)[:, seq.prefix :]
    valid = seq.mask[:, seq.prefix :].bool()
    assert torch.allclose(scores[valid], eager[valid], atol=1e-5)


@pytest.mark.parametrize("tokens,share,kept", [(4, 0.5, 2), (5, 0.5, 3), (3, 0.1, 1), (7, 1.0, 7)])
def test_kept_count_rounds_half_up_and_keeps_one(tokens, share, kept):
    assert pruning.kept_count(tokens, share) == kept
