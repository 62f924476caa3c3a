"""Re-mine hard negatives with the model being trained (ANCE, Xiong et al., 2020, "Approximate Nearest
Neighbor Negative Contrastive Learning for Dense Text Retrieval"; cited by C-Pack).

Every ``every_n_steps`` optimizer steps, rank 0 encodes each triplet source's corpus (the pool of its
rows' ``pos``/``neg`` texts, as FlagEmbedding mines) and queries with the current model, exactly as the
collator feeds them (same instructions and token limits), samples new negatives from the rank window
with the false-negative guards of :mod:`embedlight.engine.mining.negatives`, and writes them to
``<output_dir>/v<version>/<source>.jsonl``. All ranks wait at a barrier, then read that file and the
data module serves the new negatives from the next batch on.

Exact resume: the version is in the callback's checkpoint state and each version's file stays on disk,
so a resumed run serves the same negatives as the uninterrupted one.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import lightning as L

from embedlight.data.jsonl import RowKind
from embedlight.engine.corpus import pool_corpus, write_jsonl
from embedlight.engine.mining.miner import MineSettings, mine_negatives
from embedlight.engine.mining.negatives import FalseNegativeGuard
from embedlight.utils.io import DataFormatError, iter_records

log = logging.getLogger(__name__)


class RefreshNegatives(L.Callback):
    """ANCE-style refresh of the hard negatives served by a ``ContrastiveDataModule``.

    Args:
        every_n_steps: Re-mine after every this many optimizer steps.
        output_dir: Where each version's mined files go (default ``<default_root_dir>/negatives``).
        negatives: Negatives per row (FlagEmbedding's ``negative_number``).
        range_start: Sampling window start (0-based rank, inclusive).
        range_end: Sampling window end (exclusive).
        relative_margin: Drop candidates above ``relative_margin`` x the positive's score (Arctic-Embed).
        max_score: Drop candidates above this score.
        seed: Sampling seed (each version adds its number to it).
        batch_size: Texts per forward pass while encoding.
        sources: Names of the sources to refresh (default: every triplet source).
        index: :func:`~embedlight.engine.mining.search.build_index` options (default exact ``flat``).
    """

    def __init__(
        self,
        every_n_steps: int,
        output_dir: str | None = None,
        negatives: int = 15,
        range_start: int = 2,
        range_end: int = 200,
        relative_margin: float | None = 0.95,
        max_score: float | None = None,
        seed: int = 42,
        batch_size: int = 64,
        sources: list[str] | None = None,
        index: dict[str, Any] | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.output_dir = output_dir
        self.settings = MineSettings(
            negatives, range_start, range_end, FalseNegativeGuard(relative_margin, max_score), seed
        )
        self.batch_size = batch_size
        self.sources = sources
        self.index = dict(index or {"kind": "flat", "device": "auto"})
        self.version = 0
        self._pending: int | None = None

    def _dir(self, trainer: L.Trainer) -> str:
        return self.output_dir or os.path.join(trainer.default_root_dir, "negatives")

    def path(self, trainer: L.Trainer, version: int, source: str) -> str:
        """The mined file of ``source`` at ``version``."""
        return os.path.join(self._dir(trainer), f"v{version:04d}", f"{source}.jsonl")

    @staticmethod
    def _datamodule(trainer: L.Trainer) -> Any:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "set_negatives"):
            raise TypeError("RefreshNegatives needs a ContrastiveDataModule (with set_negatives)")
        return dm

    def _targets(self, dm: Any) -> list[int]:
        names = [s.name for s in dm.sources]
        if self.sources is not None:
            unknown = set(self.sources) - set(names)
            if unknown:
                raise KeyError(f"RefreshNegatives.sources: unknown {sorted(unknown)}; sources: {names}")
        return [
            i
            for i, s in enumerate(dm.sources)
            if s.kind is RowKind.TRIPLET and (self.sources is None or s.name in self.sources)
        ]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = self._datamodule(trainer)
        dl = trainer.train_dataloader
        if getattr(dl, "num_workers", 0) > 0:
            raise ValueError(
                "RefreshNegatives swaps the negatives inside the running dataset, which loader worker "
                "processes would not see; set data.num_workers=0"
            )
        if self._pending:  # resumed: serve the version the checkpoint was trained with
            self._load(trainer, dm, self._pending)
        self._pending = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        target = trainer.global_step // self.every_n_steps
        if target <= self.version:
            return
        dm = self._datamodule(trainer)
        if trainer.is_global_zero:
            self._mine(trainer, pl_module, dm, target)
        trainer.strategy.barrier("embedlight_refresh_negatives")
        self._load(trainer, dm, target)

    def _mine(self, trainer: L.Trainer, pl_module: L.LightningModule, dm: Any, version: int) -> None:
        embedder = pl_module.embedder
        collator = dm.collator()
        settings = MineSettings(
            self.settings.negatives,
            self.settings.range_start,
            self.settings.range_end,
            self.settings.guard,
            self.settings.seed + version,
        )
        for idx in self._targets(dm):
            source = dm.sources[idx]
            rows = [dict(source.rows[i]) for i in range(len(source))]
            corpus = pool_corpus(rows)
            doc_prefix = collator.doc_instruction(idx)
            corpus_emb = embedder.embed_texts(
                corpus, [doc_prefix] * len(corpus), max_length=dm.passage_max_len, batch_size=self.batch_size
            ).numpy()  # (N, D)
            queries = [r["query"] for r in rows]
            prefixes = [collator.query_instruction(idx, r.get("prompt")) for r in rows]
            query_emb = embedder.embed_texts(
                queries, prefixes, max_length=dm.query_max_len, batch_size=self.batch_size
            ).numpy()  # (Q, D)
            text_id = {t: i for i, t in enumerate(corpus)}
            pos_emb = {p: corpus_emb[text_id[p]] for r in rows for p in r["pos"]}
            mined, counts = mine_negatives(
                rows, corpus, corpus_emb, query_emb, pos_emb, settings, index_cfg=self.index
            )
            write_jsonl(self.path(trainer, version, source.name), mined)
            log.info(
                "refresh v%d at step %d: source %s, %d negatives for %d rows, dropped %s",
                version,
                trainer.global_step,
                source.name,
                counts["negatives"],
                counts["rows"],
                {k: v for k, v in counts.items() if k not in ("rows", "negatives")},
            )

    def _load(self, trainer: L.Trainer, dm: Any, version: int) -> None:
        mapping = {}
        for idx in self._targets(dm):
            name = dm.sources[idx].name
            path = self.path(trainer, version, name)
            negatives = []
            for line, row in iter_records(path, f"mined negatives v{version} of source {name!r}"):
                if not isinstance(row.get("neg"), list):
                    raise DataFormatError(path, line, "neg", "expected a list of mined negatives")
                negatives.append(row["neg"])
            mapping[name] = negatives
        dm.set_negatives(version, mapping)
        self.version = version
        pl_logger = trainer.logger
        if pl_logger is not None:
            pl_logger.log_metrics({"data/negatives_version": float(version)}, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.version}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = int(state_dict.get("version", 0))
        self.version = self._pending
