"""RetroMAE pretraining (masked auto-encoding with a one-layer decoder) as a LightningModule.

Xiao et al., 2022, "RetroMAE: Pre-Training Retrieval-oriented Language Models Via Masked
Auto-Encoder". The encoder reads a lightly masked input (default 30%) and its [CLS] state is the
sentence embedding; a one-layer transformer decoder must reconstruct a heavily masked copy (default
50%) from that embedding, which forces the embedding to carry the text's content. Two decoding modes:

* ``basic``: the decoder sees ``[h_cls, emb(masked copy)[1:]]`` with ordinary self-attention and
  predicts the masked tokens.
* ``enhanced``: two streams. The query stream is ``h_cls + p_i`` for every position; the content
  stream is ``[h_cls, e(x_1) + p_1, ...]`` (the unmasked text). A position-specific attention mask,
  sampled per row, lets position ``i`` see the sentence embedding and a random subset of the other
  tokens, never itself, and the loss covers every position.

The encoder's own MLM loss is added (``encoder_loss_weight``). Only the encoder is kept: ``export``
writes it (plus a [CLS] pooler) in the same format as the contrastive recipe, which loads it with
``backbone.pretrained=<output_dir>/export``.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers.activations import ACT2FN

from embedlight.backbones.resolve import resolve_pretrained
from embedlight.data.limits import check_max_len
from embedlight.models.embedder import Embedder
from embedlight.modules.masking import (
    IGNORE_INDEX,
    apply_mlm_mask,
    enhanced_decoding_mask,
    sample_mlm_mask,
    special_token_table,
    word_continuation_table,
)
from embedlight.modules.optim import configure, current_lr
from embedlight.registry import build as build_component
from embedlight.utils.flops import SumFlops, TokenFlops, TransformerFlops, matrix_weights
from embedlight.utils.io import write_json

log = logging.getLogger(__name__)

HEAD_FILE = "retromae_mlm_head.safetensors"  # written by export(); read back when pretraining continues

# checkpoint key prefixes of known MLM heads -> our names (dense, norm, bias)
_HEAD_LAYOUTS = {
    "cls.predictions.": {
        "transform.dense.weight": "dense.weight",
        "transform.dense.bias": "dense.bias",
        "transform.LayerNorm.weight": "norm.weight",
        "transform.LayerNorm.bias": "norm.bias",
        "bias": "bias",
    },
    "lm_head.": {
        "dense.weight": "dense.weight",
        "dense.bias": "dense.bias",
        "layer_norm.weight": "norm.weight",
        "layer_norm.bias": "norm.bias",
        "bias": "bias",
    },
}


def _cfg(config: Any, name: str, default: Any) -> Any:
    value = getattr(config, name, None)
    return default if value is None else value


class MLMHead(nn.Module):
    """BERT-style MLM head: dense -> activation -> LayerNorm -> vocabulary projection tied to the
    encoder's word embeddings (plus a bias).

    Args:
        word_embeddings: The encoder's input embedding table, (V, H); its weight is shared.
        act: Activation name (``gelu``, ...).
        eps: LayerNorm epsilon.
    """

    def __init__(self, word_embeddings: nn.Embedding, act: str = "gelu", eps: float = 1e-12) -> None:
        super().__init__()
        vocab, hidden = word_embeddings.weight.shape
        self.dense = nn.Linear(hidden, hidden)
        self.act = ACT2FN[act]
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.word_embeddings = [word_embeddings]  # a list: shared, not registered twice

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for hidden states, (..., H) -> (..., V)."""
        h = self.norm(self.act(self.dense(hidden)))  # (..., H)
        return F.linear(h, self.word_embeddings[0].weight, self.bias)  # (..., V)


class DecoderLayer(nn.Module):
    """One post-LayerNorm transformer layer (BERT's layout) whose queries and keys/values may differ.

    Args:
        hidden: Width.
        heads: Attention heads.
        intermediate: Feed-forward width.
        act: Feed-forward activation name.
        eps: LayerNorm epsilon.
        dropout: Dropout on the residual branches.
        attn_dropout: Dropout on the attention probabilities.
    """

    def __init__(
        self,
        hidden: int,
        heads: int,
        intermediate: int,
        act: str = "gelu",
        eps: float = 1e-12,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, intermediate)
        self.act = ACT2FN[act]
        self.ffn_out = nn.Linear(intermediate, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout

    def forward(self, query: torch.Tensor, content: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Attend from ``query`` (B, Lq, H) to ``content`` (B, Lk, H) where ``visible`` (B, Lq, Lk) is True."""
        b, lq, h = query.shape
        lk = content.size(1)
        d = h // self.heads
        q = self.query(query).view(b, lq, self.heads, d).transpose(1, 2)  # (B, nh, Lq, d)
        k = self.key(content).view(b, lk, self.heads, d).transpose(1, 2)  # (B, nh, Lk, d)
        v = self.value(content).view(b, lk, self.heads, d).transpose(1, 2)  # (B, nh, Lk, d)
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=visible.unsqueeze(1), dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, nh, Lq, d)
        attn = attn.transpose(1, 2).reshape(b, lq, h)  # (B, Lq, H)
        x = self.norm1(query + self.dropout(self.out(attn)))  # (B, Lq, H)
        return self.norm2(x + self.dropout(self.ffn_out(self.act(self.ffn_in(x)))))  # (B, Lq, H)


def _checkpoint_head_state(folder: str) -> dict[str, torch.Tensor]:
    """MLM-head tensors found in a checkpoint folder, renamed to :class:`MLMHead`'s names (may be empty)."""
    own = os.path.join(folder, HEAD_FILE)
    if os.path.isfile(own):
        with safe_open(own, framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}
    state: dict[str, torch.Tensor] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, framework="pt") as fh:
            for key in fh.keys():
                for prefix, names in _HEAD_LAYOUTS.items():
                    if key.startswith(prefix) and key[len(prefix) :] in names:
                        state[names[key[len(prefix) :]]] = fh.get_tensor(key)
    return state


class RetroMAEModule(L.LightningModule):
    """RetroMAE pretraining of an injected encoder backbone.

    Args:
        backbone: A registered encoder backbone (``hf_encoder``); the tokenizer must have a mask token.
        optimizer: Partial taking parameter groups (default AdamW, lr 1e-4).
        scheduler: Partial taking ``(optimizer, num_training_steps)``; None = constant lr.
        encoder_mask_ratio: Share of the encoder input's tokens (or words) that are masked.
        decoder_mask_ratio: ``basic``: share of the decoder copy that is masked; ``enhanced``: chance
            that a given context token is hidden from a given position.
        mode: ``enhanced`` (two-stream, the paper's default) or ``basic``.
        whole_word_mask: Mask whole words (all their sub-word pieces) in the encoder and basic decoder.
        encoder_loss_weight: Weight of the encoder's MLM loss.
        decoder_loss_weight: Weight of the decoder's reconstruction loss.
        mlm_head: ``auto`` loads the checkpoint's MLM head when it has one (BERT/RoBERTa layouts or a
            previous RetroMAE export) and builds a fresh one otherwise; ``fresh`` always builds one.
        replace_prob: Share of masked encoder/decoder tokens replaced by [MASK] (BERT's 80%).
        random_prob: Share replaced by a random token (BERT's 10%; the rest stay unchanged).
        embed_max_length: Token limit of ``self.embedder`` at evaluation and in the export.
    """

    def __init__(
        self,
        backbone: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        encoder_mask_ratio: float = 0.3,
        decoder_mask_ratio: float = 0.5,
        mode: str = "enhanced",
        whole_word_mask: bool = False,
        encoder_loss_weight: float = 1.0,
        decoder_loss_weight: float = 1.0,
        mlm_head: str = "auto",
        replace_prob: float = 0.8,
        random_prob: float = 0.1,
        embed_max_length: int = 512,
    ) -> None:
        super().__init__()
        if mode not in ("basic", "enhanced"):
            raise ValueError(f"module.mode must be 'basic' or 'enhanced', got {mode!r}")
        if mlm_head not in ("auto", "fresh"):
            raise ValueError(f"module.mlm_head must be 'auto' or 'fresh', got {mlm_head!r}")
        for name, value in (
            ("encoder_mask_ratio", encoder_mask_ratio),
            ("decoder_mask_ratio", decoder_mask_ratio),
        ):
            if not 0.0 < value < 1.0:
                raise ValueError(f"module.{name} must be in (0, 1), got {value}")
        tokenizer = backbone.tokenizer
        check_max_len("module.embed_max_length", embed_max_length, tokenizer)
        if tokenizer.mask_token_id is None:
            raise ValueError("RetroMAE needs a tokenizer with a mask token (an encoder such as BERT/MiniLM)")
        self.backbone = backbone
        self.mode = mode
        self.encoder_mask_ratio = encoder_mask_ratio
        self.decoder_mask_ratio = decoder_mask_ratio
        self.whole_word_mask = whole_word_mask
        self.encoder_loss_weight = encoder_loss_weight
        self.decoder_loss_weight = decoder_loss_weight
        self.replace_prob = replace_prob
        self.random_prob = random_prob
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.optimizer_factory = optimizer or (
            lambda params: torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
        )
        self.scheduler_factory = scheduler

        model = backbone.model
        config = model.config
        hidden = int(backbone.hidden_size)
        word = model.get_input_embeddings()
        self.vocab_size = int(word.weight.size(0))
        self.register_buffer(
            "special_table", special_token_table(tokenizer, self.vocab_size), persistent=False
        )
        cont = word_continuation_table(tokenizer, self.vocab_size) if whole_word_mask else None
        self.register_buffer("continuation_table", cont, persistent=False)

        eps = float(_cfg(config, "layer_norm_eps", 1e-12))
        act = _cfg(config, "hidden_act", "gelu")
        self.mlm_head = MLMHead(word, act=act if isinstance(act, str) else "gelu", eps=eps)
        self._init_head(mlm_head)

        # the decoder: one layer shaped like the encoder's layers, fresh weights (as in the paper)
        self.decoder = DecoderLayer(
            hidden,
            int(_cfg(config, "num_attention_heads", max(1, hidden // 64))),
            int(_cfg(config, "intermediate_size", 4 * hidden)),
            act if isinstance(act, str) else "gelu",
            eps,
            float(_cfg(config, "hidden_dropout_prob", 0.1)),
            float(_cfg(config, "attention_probs_dropout_prob", 0.1)),
        )
        std = float(_cfg(config, "initializer_range", 0.02))
        for m in self.decoder.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
        # decoder input embeddings: the encoder's own embedding module when it has absolute positions
        # (BERT, RoBERTa, MiniLM, XLM-R), as in the paper; otherwise word embeddings + fresh positions
        emb = getattr(model, "embeddings", None)
        self._shared_embeddings = isinstance(getattr(emb, "position_embeddings", None), nn.Embedding)
        if not self._shared_embeddings:
            self.position_embeddings = nn.Embedding(int(_cfg(config, "max_position_embeddings", 512)), hidden)
            self.embed_norm = nn.LayerNorm(hidden, eps=eps)
            nn.init.normal_(self.position_embeddings.weight, std=std)

        # the embedding the decoder is trained through: [CLS], normalised for retrieval evaluation
        self.embedder = Embedder(
            backbone, build_component("pooler", "cls"), normalize=True, max_length=embed_max_length
        )

    # ------------------------------------------------------------------ setup helpers

    def _init_head(self, policy: str) -> None:
        source = getattr(self.backbone, "pretrained", None)
        state: dict[str, torch.Tensor] = {}
        if policy == "auto" and source:
            try:
                folder = resolve_pretrained(source)
            except (FileNotFoundError, ImportError):
                folder = None
            if folder and os.path.isdir(folder):
                state = _checkpoint_head_state(folder)
        own = {k: v for k, v in self.mlm_head.state_dict().items() if not k.startswith("word_embeddings")}
        if state and set(state) == set(own) and all(state[k].shape == own[k].shape for k in own):
            self.mlm_head.load_state_dict(state, strict=False)
            log.info("retromae: MLM head loaded from the checkpoint %s", source)
            return
        std = float(_cfg(self.backbone.model.config, "initializer_range", 0.02))
        nn.init.normal_(self.mlm_head.dense.weight, std=std)
        nn.init.zeros_(self.mlm_head.dense.bias)
        why = "mlm_head=fresh" if policy == "fresh" else f"the checkpoint {source!r} has no MLM head"
        log.info("retromae: FRESH MLM head (randomly initialised; %s), tied to the word embeddings", why)

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings, token + position (+ LayerNorm), (B, L) -> (B, L, H)."""
        if self._shared_embeddings:
            return self.backbone.model.embeddings(input_ids=input_ids)  # (B, L, H)
        pos = torch.arange(input_ids.size(1), device=input_ids.device)  # (L,)
        word = self.backbone.model.get_input_embeddings()(input_ids)  # (B, L, H)
        return self.embed_norm(word + self.position_embeddings(pos))  # (B, L, H)

    def _positions(self, length: int, device: torch.device) -> torch.Tensor:
        """Position embeddings for positions 0..L-1, (L, H)."""
        pos = torch.arange(length, device=device)  # (L,)
        if self._shared_embeddings:
            return self.backbone.model.embeddings.position_embeddings(pos)  # (L, H)
        return self.position_embeddings(pos)  # (L, H)

    # ------------------------------------------------------------------ masking

    def build_masks(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every random mask of one step, built on the batch's device (timed by the experiments script).

        Returns:
            ``encoder_ids``/``encoder_labels`` (B, L); for ``basic`` ``decoder_ids``/``decoder_labels``
            (B, L); for ``enhanced`` ``visible`` (B, L, L) and ``decoder_labels`` (B, L).
        """
        enc_mask = sample_mlm_mask(
            input_ids, attention_mask, self.encoder_mask_ratio, self.special_table, self.continuation_table
        )  # (B, L)
        enc_ids, enc_labels = apply_mlm_mask(
            input_ids, enc_mask, self.mask_token_id, self.vocab_size, self.replace_prob, self.random_prob
        )  # (B, L), (B, L)
        out = {"encoder_ids": enc_ids, "encoder_labels": enc_labels}
        if self.mode == "basic":
            dec_mask = sample_mlm_mask(
                input_ids,
                attention_mask,
                self.decoder_mask_ratio,
                self.special_table,
                self.continuation_table,
            )  # (B, L)
            out["decoder_ids"], out["decoder_labels"] = apply_mlm_mask(
                input_ids, dec_mask, self.mask_token_id, self.vocab_size, self.replace_prob, self.random_prob
            )
        else:
            out["visible"] = enhanced_decoding_mask(attention_mask, self.decoder_mask_ratio)  # (B, L, L)
            targets = attention_mask.bool().clone()  # (B, L) every real token ...
            targets[:, 0] = False  # ... except slot 0, which holds the sentence embedding
            out["decoder_labels"] = input_ids.masked_fill(~targets, IGNORE_INDEX)  # (B, L)
        return out

    # ------------------------------------------------------------------ losses

    def _mlm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the MLM head over the labelled positions only (saves the (B, L, V) logits)."""
        picked = labels != IGNORE_INDEX  # (B, L)
        if not picked.any():
            return hidden.sum() * 0.0
        logits = self.mlm_head(hidden[picked])  # (M, V)
        return F.cross_entropy(logits.float(), labels[picked])

    def decoder_loss(
        self,
        cls: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masks: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Reconstruction loss of the one-layer decoder from the sentence embedding ``cls`` (B, 1, H).

        Args:
            cls: The encoder's [CLS] states, (B, 1, H).
            input_ids: The original (unmasked) token ids, (B, L).
            attention_mask: 1 for real tokens, (B, L).
            masks: :meth:`build_masks` output.
        """
        length = input_ids.size(1)
        if self.mode == "basic":
            tokens = self._embed(masks["decoder_ids"])  # (B, L, H)
            content = torch.cat([cls, tokens[:, 1:]], dim=1)  # (B, L, H)
            real = attention_mask.bool()  # (B, L)
            visible = real.unsqueeze(1).expand(-1, length, -1)  # (B, L, L) ordinary padding mask
            decoded = self.decoder(content, content, visible)  # (B, L, H)
        else:
            tokens = self._embed(input_ids)  # (B, L, H) unmasked: the attention mask hides tokens
            content = torch.cat([cls, tokens[:, 1:]], dim=1)  # (B, L, H) content stream
            query = cls + self._positions(length, input_ids.device).unsqueeze(0)  # (B, L, H) query stream
            decoded = self.decoder(query, content, masks["visible"])  # (B, L, H)
        return self._mlm_loss(decoded, masks["decoder_labels"])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masks: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Encoder MLM + decoder reconstruction losses for one batch (right-padded, slot 0 = [CLS]).

        Args:
            input_ids: Token ids, (B, L).
            attention_mask: 1 for real tokens, (B, L).
            masks: Precomputed :meth:`build_masks` output (sampled here when None).

        Returns:
            ``loss``, ``encoder_mlm``, ``decoder_loss`` (scalars) and ``embedding`` (B, H).
        """
        masks = masks if masks is not None else self.build_masks(input_ids, attention_mask)
        hidden = self.backbone(masks["encoder_ids"], attention_mask)  # (B, L, H)
        encoder_mlm = self._mlm_loss(hidden, masks["encoder_labels"])
        cls = hidden[:, :1]  # (B, 1, H) the sentence embedding
        decoder_loss = self.decoder_loss(cls, input_ids, attention_mask, masks)
        loss = self.encoder_loss_weight * encoder_mlm + self.decoder_loss_weight * decoder_loss
        return {
            "loss": loss,
            "encoder_mlm": encoder_mlm,
            "decoder_loss": decoder_loss,
            "embedding": cls[:, 0],
        }

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self(batch["input_ids"], batch["attention_mask"])
        size = batch["input_ids"].size(0)
        self.log("train/encoder_mlm", out["encoder_mlm"], batch_size=size)
        self.log("train/decoder_loss", out["decoder_loss"], prog_bar=True, batch_size=size)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=size)
        if (lr := current_lr(self)) is not None:
            self.log("train/lr", lr, batch_size=size)
        return out["loss"]

    def configure_optimizers(self) -> Any:
        total = self.trainer.estimated_stepping_batches
        if self.scheduler_factory is not None and not math.isfinite(total):
            raise ValueError(
                "the training data has no length (streaming): set trainer.max_steps for the schedule"
            )
        return configure(self, self.optimizer_factory, self.scheduler_factory, total)

    def flop_model(self) -> SumFlops:
        """Training FLOPs per step for MFU (see :mod:`embedlight.utils.flops`): the encoder, the MLM head
        on the masked encoder tokens, the one-layer decoder over every real token, and the MLM head
        on the decoder's targets (expected shares: ``encoder_mask_ratio``; ``basic``
        ``decoder_mask_ratio``, ``enhanced`` every token but slot 0, counted as all)."""
        hidden = int(self.backbone.hidden_size)
        head = TokenFlops(self.mlm_head.dense.weight.numel() + self.vocab_size * hidden)  # H*H + V*H
        decoder = TransformerFlops(*matrix_weights(self.decoder), layers=1, attention_width=hidden)
        decoder_share = self.decoder_mask_ratio if self.mode == "basic" else 1.0
        return SumFlops(
            [
                self.backbone.flop_model(),
                TokenFlops(head.weights, share=self.encoder_mask_ratio),
                decoder,
                TokenFlops(head.weights, share=decoder_share),
            ]
        )

    def export(self, directory: str) -> str:
        """Write the encoder (transformers + sentence-transformers, [CLS] pooling, normalised) and the MLM head.

        ``backbone.pretrained=<directory>`` then starts contrastive fine-tuning (or more RetroMAE
        pretraining, which picks the MLM head back up) from it.
        """
        self.embedder.export(directory, extra={"recipe": "retromae", "mode": self.mode})
        head = {k: v.detach().float().contiguous().cpu() for k, v in self.mlm_head.state_dict().items()}
        save_file(head, os.path.join(directory, HEAD_FILE))
        settings = {
            "mode": self.mode,
            "encoder_mask_ratio": self.encoder_mask_ratio,
            "decoder_mask_ratio": self.decoder_mask_ratio,
            "whole_word_mask": self.whole_word_mask,
        }
        write_json(os.path.join(directory, "retromae.json"), settings)
        return directory
