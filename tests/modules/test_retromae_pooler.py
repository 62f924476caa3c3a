"""RetroMAE's decoder reads the injected pooler: [CLS] as before (pinned), the mean with pooler=mean,
and a projection to another width is refused at start-up naming ``pooler.projection``."""

from __future__ import annotations

import json

import pytest
import torch

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.models.embedder import Embedder
from embedlight.modules.retromae import RetroMAEModule
from embedlight.poolers.cls import CLSPooler
from embedlight.poolers.mean import MeanPooler
from embedlight.testing import WORDS, make_tiny_model
from tests.helpers import compose_cfg

# losses of the [CLS] path computed on the code before the pooler was injected (commit fc50008,
# where RetroMAE built its own `cls` pooler): tiny BERT seed 0, module seed 0, masks seed 1, eval mode,
# float32. (loss, encoder_mlm, decoder_loss)
PINNED_CLS = {
    "enhanced": (9.229525566101074, 4.609740257263184, 4.619785308837891),
    "basic": (9.22256851196289, 4.609740257263184, 4.612827777862549),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_model(str(tmp_path_factory.mktemp("tiny") / "bert"), "bert")


def _texts(n: int = 48, seed: int = 0) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    return [
        " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (int(n_words),), generator=g))
        for n_words in torch.randint(6, 20, (n,), generator=g)
    ]


def _module(tiny: str, pooler, mode: str) -> RetroMAEModule:
    torch.manual_seed(0)
    return RetroMAEModule(Embedder(HFEncoder(tiny), pooler), mode=mode)


def _inputs(module: RetroMAEModule) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    enc = module.backbone.tokenizer(_texts(8), padding=True, return_tensors="pt")
    torch.manual_seed(1)
    masks = module.build_masks(enc["input_ids"], enc["attention_mask"])
    return enc["input_ids"], enc["attention_mask"], masks


def _decoder_inputs(module: RetroMAEModule) -> list[tuple[torch.Tensor, ...]]:
    """Record every ``(query, content, visible)`` the decoder layer receives."""
    seen: list[tuple[torch.Tensor, ...]] = []
    module.decoder.register_forward_pre_hook(lambda _m, args: seen.append(tuple(a.detach() for a in args)))
    return seen


@pytest.mark.parametrize("mode", ["enhanced", "basic"])
def test_cls_pooler_gives_the_pinned_losses_of_the_former_cls_path(tiny, mode):
    module = _module(tiny, CLSPooler(), mode).eval()
    ids, att, masks = _inputs(module)
    assert (att[:, 0] == 1).all()  # right padding: [CLS] sits in slot 0 of every row
    with torch.no_grad():
        out = module(ids, att, masks=masks)
        hidden = module.backbone(masks["encoder_ids"], att)  # (B, L, H)
        by_hand = module.decoder_loss(hidden[:, :1], ids, att, masks)  # the former code's slot-0 state
    got = (out["loss"].item(), out["encoder_mlm"].item(), out["decoder_loss"].item())
    assert got == pytest.approx(PINNED_CLS[mode], rel=1e-5)
    assert torch.equal(out["decoder_loss"], by_hand)  # bit for bit the [CLS]-slice path
    assert torch.equal(out["embedding"], hidden[:, 0])


@pytest.mark.parametrize("mode", ["enhanced", "basic"])
def test_mean_pooler_feeds_the_decoder_the_mean_of_the_token_states(tiny, mode):
    module = _module(tiny, MeanPooler(), mode).eval()
    ids, att, masks = _inputs(module)
    assert att.sum(1).unique().numel() > 1  # rows really are padded
    seen = _decoder_inputs(module)
    with torch.no_grad():
        out = module(ids, att, masks=masks)
        hidden = module.backbone(masks["encoder_ids"], att)  # (B, L, H)
    # independent reference: sum over real tokens / their count, row by row
    mean = torch.stack([hidden[i, att[i].bool()].sum(0) / att[i].sum() for i in range(len(ids))])  # (B, H)
    query, content, _ = seen[-1]
    torch.testing.assert_close(content[:, 0], mean, rtol=1e-5, atol=1e-6)  # slot 0 holds the embedding
    if mode == "enhanced":  # the query stream is the embedding plus each position's embedding
        pos = module._positions(ids.size(1), ids.device)  # (L, H)
        torch.testing.assert_close(query - pos.unsqueeze(0), mean.unsqueeze(1).expand_as(query))
    torch.testing.assert_close(out["embedding"], mean, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(mean, hidden[:, 0], atol=1e-3)  # and it is not the [CLS] state


def test_projection_to_another_width_is_refused_naming_the_key(tiny):
    with pytest.raises(ValueError, match=r"pooler\.projection"):
        RetroMAEModule(Embedder(HFEncoder(tiny), MeanPooler(projection="linear", projection_dim=16)))
    # a projection that keeps the width is a trained head on the pooled state: accepted
    module = RetroMAEModule(Embedder(HFEncoder(tiny), MeanPooler(projection="linear")))
    assert module.embedder.dim == module.backbone.hidden_size


def test_recipe_with_pooler_mean_trains_and_exports_the_mean(tiny, tmp_path):
    from embedlight.training.run import build, run

    texts = tmp_path / "text.jsonl"
    texts.write_text("".join(json.dumps({"text": t * 3}) + "\n" for t in _texts(24)))
    overrides = [
        "experiment=retromae_tiny",
        "pooler=mean",
        f"backbone.pretrained={tiny}",
        "backbone.random_init=false",
        "backbone.config_overrides=null",
        f"data.train_files=[{texts}]",
        "data.max_len=16",
        "data.batch_size=8",
        f"paths.output_dir={tmp_path / 'run'}",
        "trainer.max_steps=2",
        "callbacks.progress=null",
    ]
    cfg = compose_cfg(overrides)
    module, _ = build(cfg)
    assert isinstance(module.embedder.pooler, MeanPooler)
    assert module.embedder.max_length == 128  # the preset's embedder.max_length
    result = run(cfg)
    meta = json.loads((tmp_path / "run" / "export" / "embedlight.json").read_text())
    assert result["export"] and meta["pooling_mode"] == "mean" and meta["recipe"] == "retromae"
