"""RetroMAE pretraining (masked auto-encoding with a one-layer decoder) as a LightningModule.

Xiao et al., 2022, "RetroMAE: Pre-Training Retrieval-oriented Language Models Via Masked
Auto-Encoder". The encoder reads a lightly masked input (default 30%) and its pooled state is the
sentence embedding ``h`` (the paper's [CLS] with ``pooler=cls``; any injected pooler whose output keeps
the hidden width); a one-layer transformer decoder must reconstruct a heavily masked copy (default
50%) from that embedding, which forces the embedding to carry the text's content. Two decoding modes:

* ``basic``: the decoder sees ``[h, emb(masked copy)[1:]]`` with ordinary self-attention and
  predicts the masked tokens.
* ``enhanced``: two streams. The query stream is ``h + p_i`` for every position; the content
  stream is ``[h, e(x_1) + p_1, ...]`` (the unmasked text). A position-specific attention mask,
  sampled per row, lets position ``i`` see the sentence embedding and a random subset of the other
  tokens, never itself, and the loss covers every position.

The encoder's own MLM loss is added (``encoder_loss_weight``). Only the embedder is kept: ``export``
writes it (backbone, pooler, normalisation) in the same format as the contrastive recipe, which loads
it with ``backbone.pretrained=<output_dir>/export``. The decoder and MLM head live in
:mod:`embedlight.modules.retromae_decoder`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from embedlight.backbones.loading import MLM_HEAD_FILE, mlm_head_state
from embedlight.backbones.resolve import resolve_pretrained
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
from embedlight.modules.retromae_decoder import DecoderLayer, MLMHead, config_value
from embedlight.utils.flops import SumFlops, TokenFlops, TransformerFlops, matrix_weights
from embedlight.utils.io import write_json

log = logging.getLogger(__name__)


class RetroMAEModule(L.LightningModule):
    """RetroMAE pretraining of an injected embedder's encoder.

    The decoder is conditioned on the embedder's pooled state before normalisation, (B, H): the
    paper's [CLS] state with ``pooler=cls``, the mean of the token states with ``pooler=mean``.

    Args:
        embedder: The model whose embedding is trained (``Embedder(hf_encoder, pooler)``); its
            backbone's tokenizer must have a mask token, and its pooler must keep the hidden width
            (no projection to another size): the decoder reads the pooled state as a token state.
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
    """

    def __init__(
        self,
        embedder: Embedder,
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
        backbone = embedder.backbone
        hidden = int(backbone.hidden_size)
        if embedder.pooler.out_dim != hidden:
            raise ValueError(
                f"pooler.projection={embedder.pooler.projection!r} maps the hidden size {hidden} to "
                f"{embedder.pooler.out_dim}, but RetroMAE's decoder reads the pooled state as a token "
                "state of the hidden size: set pooler.projection=null (or pooler.projection_dim=null)"
            )
        tokenizer = backbone.tokenizer
        if tokenizer.mask_token_id is None:
            raise ValueError("RetroMAE needs a tokenizer with a mask token (an encoder such as BERT/MiniLM)")
        self.backbone = backbone  # also registered here, so checkpoints keep their `backbone.*` keys
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
        word = model.get_input_embeddings()
        self.vocab_size = int(word.weight.size(0))
        self.register_buffer(
            "special_table", special_token_table(tokenizer, self.vocab_size), persistent=False
        )
        cont = word_continuation_table(tokenizer, self.vocab_size) if whole_word_mask else None
        self.register_buffer("continuation_table", cont, persistent=False)

        eps = float(config_value(config, "layer_norm_eps", 1e-12))
        act = config_value(config, "hidden_act", "gelu")
        self.mlm_head = MLMHead(word, act=act if isinstance(act, str) else "gelu", eps=eps)
        self._init_head(mlm_head)

        # the decoder: one layer shaped like the encoder's layers, fresh weights (as in the paper)
        self.decoder = DecoderLayer(
            hidden,
            int(config_value(config, "num_attention_heads", max(1, hidden // 64))),
            int(config_value(config, "intermediate_size", 4 * hidden)),
            act if isinstance(act, str) else "gelu",
            eps,
            float(config_value(config, "hidden_dropout_prob", 0.1)),
            float(config_value(config, "attention_probs_dropout_prob", 0.1)),
        )
        std = float(config_value(config, "initializer_range", 0.02))
        for m in self.decoder.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
        # decoder input embeddings: the encoder's own embedding module when it has absolute positions
        # (BERT, RoBERTa, MiniLM, XLM-R), as in the paper; otherwise word embeddings + fresh positions
        emb = getattr(model, "embeddings", None)
        self._shared_embeddings = isinstance(getattr(emb, "position_embeddings", None), nn.Embedding)
        if not self._shared_embeddings:
            positions = int(config_value(config, "max_position_embeddings", 512))
            self.position_embeddings = nn.Embedding(positions, hidden)
            self.embed_norm = nn.LayerNorm(hidden, eps=eps)
            nn.init.normal_(self.position_embeddings.weight, std=std)

        # the embedding the decoder is trained through; evaluated and exported as configured
        self.embedder = embedder

    # ------------------------------------------------------------------ setup helpers

    def _init_head(self, policy: str) -> None:
        source = self.backbone.pretrained
        state: dict[str, torch.Tensor] = {}
        if policy == "auto" and source:
            try:
                folder = resolve_pretrained(source)
            except (FileNotFoundError, ImportError):
                folder = None
            if folder and os.path.isdir(folder):
                state = mlm_head_state(folder)
        own = {k: v for k, v in self.mlm_head.state_dict().items() if not k.startswith("word_embeddings")}
        if state and set(state) == set(own) and all(state[k].shape == own[k].shape for k in own):
            self.mlm_head.load_state_dict(state, strict=False)
            log.info("retromae: MLM head loaded from the checkpoint %s", source)
            return
        std = float(config_value(self.backbone.model.config, "initializer_range", 0.02))
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
        sentence: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masks: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Reconstruction loss of the one-layer decoder from the sentence embedding, (B, 1, H).

        Args:
            sentence: The encoder's pooled states before normalisation, (B, 1, H).
            input_ids: The original (unmasked) token ids, (B, L).
            attention_mask: 1 for real tokens, (B, L).
            masks: :meth:`build_masks` output.
        """
        length = input_ids.size(1)
        if self.mode == "basic":
            tokens = self._embed(masks["decoder_ids"])  # (B, L, H)
            content = torch.cat([sentence, tokens[:, 1:]], dim=1)  # (B, L, H)
            real = attention_mask.bool()  # (B, L)
            visible = real.unsqueeze(1).expand(-1, length, -1)  # (B, L, L) ordinary padding mask
            decoded = self.decoder(content, content, visible)  # (B, L, H)
        else:
            tokens = self._embed(input_ids)  # (B, L, H) unmasked: the attention mask hides tokens
            content = torch.cat([sentence, tokens[:, 1:]], dim=1)  # (B, L, H) content stream
            positions = self._positions(length, input_ids.device).unsqueeze(0)  # (1, L, H)
            query = sentence + positions  # (B, L, H) query stream
            decoded = self.decoder(query, content, masks["visible"])  # (B, L, H)
        return self._mlm_loss(decoded, masks["decoder_labels"])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masks: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Encoder MLM + decoder reconstruction losses for one batch (right-padded, slot 0 = [CLS]).

        The decoder reads the injected pooler's output on the encoder's states (not normalised).

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
        pooled = self.embedder.pooler(hidden, attention_mask)  # (B, H) the sentence embedding
        decoder_loss = self.decoder_loss(pooled.unsqueeze(1), input_ids, attention_mask, masks)
        loss = self.encoder_loss_weight * encoder_mlm + self.decoder_loss_weight * decoder_loss
        return {
            "loss": loss,
            "encoder_mlm": encoder_mlm,
            "decoder_loss": decoder_loss,
            "embedding": pooled,
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
        """Write the embedder (transformers + sentence-transformers, its pooler and normalisation) and the MLM head.

        ``backbone.pretrained=<directory>`` then starts contrastive fine-tuning (or more RetroMAE
        pretraining, which picks the MLM head back up) from it.
        """
        self.embedder.export(directory, extra={"recipe": "retromae", "mode": self.mode})
        head = {k: v.detach().float().contiguous().cpu() for k, v in self.mlm_head.state_dict().items()}
        save_file(head, os.path.join(directory, MLM_HEAD_FILE))
        settings = {
            "mode": self.mode,
            "encoder_mask_ratio": self.encoder_mask_ratio,
            "decoder_mask_ratio": self.decoder_mask_ratio,
            "whole_word_mask": self.whole_word_mask,
        }
        write_json(os.path.join(directory, "retromae.json"), settings)
        return directory
