"""Plain-text data for pretraining recipes (RetroMAE): JSONL or Hugging Face datasets, chunked to ``max_len``.

Documents are tokenised once and split into chunks of at most ``max_len`` tokens (special tokens
included); the collator only pads. Masking happens in the module, on the device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import datasets
import lightning as L
import torch
from datasets.exceptions import DatasetGenerationError
from torch.utils.data import DataLoader, IterableDataset, Sampler
from transformers import PreTrainedTokenizerBase

from embedlight.data.jsonl import FEATURES, RowKind, read_jsonl
from embedlight.data.limits import check_batch_size, check_full_batch, check_max_len
from embedlight.data.loader import ResumableDataLoader
from embedlight.utils.hardware import loader_kwargs
from embedlight.utils.io import DataFormatError, iter_records

log = logging.getLogger(__name__)


def read_texts(
    path: str, text_field: str = "text", title_field: str | None = None
) -> Iterator[dict[str, str]]:
    """Yield ``{"text": ...}`` rows of a JSONL file, validated (errors name file, line and field).

    Args:
        path: JSONL file.
        text_field: Field holding the text (``text``; BEIR corpora also use ``text``).
        title_field: Optional field prepended to the text when non-empty (BEIR's ``title``).
    """
    if text_field == "text" and title_field is None:
        yield from read_jsonl(path, RowKind.TEXT)
        return
    for line_no, row in iter_records(path):
        text = row.get(text_field)
        if text is None:
            raise DataFormatError(path, line_no, text_field, "missing")
        if not isinstance(text, str):
            raise DataFormatError(path, line_no, text_field, f"expected a string, got {type(text).__name__}")
        title = row.get(title_field) if title_field else None
        if title is not None and not isinstance(title, str):
            raise DataFormatError(
                path, line_no, title_field, f"expected a string, got {type(title).__name__}"
            )
        yield {"text": f"{title}. {text}" if title else text}


def _generate(paths: list[str], text_field: str, title_field: str | None, stamps: list[str]):
    # `stamps` (path:mtime:size) only key the Arrow cache; `paths` is a list so streaming shards by file
    for path in paths:
        yield from read_texts(path, text_field, title_field)


def _special_affixes(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a single text (``[CLS]`` and ``[SEP]`` for BERT)."""
    body = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(body) + 1):
        if full[i : i + len(body)] == body:
            return list(full[:i]), list(full[i + len(body) :])
    raise ValueError(f"cannot find the special tokens of {type(tokenizer).__name__}: {full} vs {body}")


class ChunkTokenizer:
    """Tokenise texts and split each into chunks of at most ``max_len`` tokens, special tokens included.

    Args:
        tokenizer: The backbone's tokenizer.
        max_len: Chunk length including [CLS]/[SEP].
        min_chunk_len: Drop a document's trailing chunk shorter than this (content tokens; capped at
            half a chunk), unless it is the document's only chunk.
        text_field: Column holding the text.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_len: int,
        min_chunk_len: int = 16,
        text_field: str = "text",
    ) -> None:
        self.tokenizer = tokenizer
        self.prefix, self.suffix = _special_affixes(tokenizer)
        self.special = len(self.prefix) + len(self.suffix)
        self.body = max_len - self.special
        if self.body < 1:
            raise ValueError(f"data.max_len={max_len} leaves no room next to {self.special} special tokens")
        self.min_chunk_len = min(min_chunk_len, self.body // 2)  # short max_len: keep half-full chunks
        self.text_field = text_field

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        """Batched ``datasets.map`` function: ``{text_field: [str]}`` -> ``{"input_ids": [[int]]}``."""
        texts = [t for t in batch[self.text_field] if isinstance(t, str)]
        pieces = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        out: list[list[int]] = []
        for ids in pieces:
            if not ids:
                continue
            for start in range(0, len(ids), self.body):
                chunk = ids[start : start + self.body]
                if start and len(chunk) < self.min_chunk_len:
                    break
                out.append([*self.prefix, *chunk, *self.suffix])
        return {"input_ids": out}


class PretrainCollator:
    """Right-pads ``input_ids`` rows into ``input_ids`` and ``attention_mask``, (B, L) int64.

    Right padding always (whatever the tokenizer's side): RetroMAE's decoder reads slot 0 as [CLS].
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)  # (B, L)
        attention = torch.zeros((len(rows), longest), dtype=torch.long)  # (B, L)
        for i, r in enumerate(rows):
            ids = torch.as_tensor(r["input_ids"], dtype=torch.long)  # (l,)
            input_ids[i, : ids.numel()] = ids
            attention[i, : ids.numel()] = 1
        return {"input_ids": input_ids, "attention_mask": attention}


class ShuffledBatchSampler(Sampler[list[int]]):
    """Shuffled batches of row indices, one shard per data-parallel rank, incomplete batches dropped.

    Epoch ``e``'s order is a pure function of ``(seed, e)`` and :meth:`skip_batches` starts an epoch
    part-way, so a resumed run sees exactly the batches an uninterrupted one would (a
    ``RandomSampler`` draws from a generator whose state is not in the checkpoint, and cannot skip).

    Args:
        n: Number of rows.
        batch_size: Rows per batch per rank.
        seed: Base seed.
        rank: This process's data-parallel rank.
        world_size: Number of data-parallel ranks (rank ``r`` takes every ``world_size``-th batch).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 42, rank: int = 0, world_size: int = 1) -> None:
        check_batch_size(batch_size)
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its shuffle)."""
        self.epoch = epoch

    def skip_batches(self, n: int) -> None:
        """Skip the first ``n`` batches of the next iteration (mid-epoch resume)."""
        self._skip = n

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        step = self.batch_size * self.world_size
        for b in range(skip, len(self)):
            start = b * step + self.rank * self.batch_size
            yield order[start : start + self.batch_size]


class _TorchIterable(IterableDataset):
    """Wraps a ``datasets.IterableDataset`` so the DataLoader treats it as iterable (set_epoch reshuffles)."""

    def __init__(self, ds: datasets.IterableDataset) -> None:
        self.ds = ds
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.ds.set_epoch(self.epoch)
        yield from self.ds


class PretrainDataModule(L.LightningDataModule):
    """Plain-text training data for RetroMAE (and other masked-LM style recipes).

    Args:
        tokenizer: The backbone's tokenizer (injected by the entry point).
        train_files: ``{"text"}`` JSONL files (``data.train_files=[a.jsonl]``); validated row by row.
        hf_dataset: A Hugging Face dataset name or local folder (``datasets.load_dataset``), instead of
            or in addition to ``train_files``.
        hf_split: Split of ``hf_dataset``.
        text_field: Field holding the text (in JSONL rows and HF datasets).
        streaming: Read lazily (``datasets`` IterableDataset) for corpora that don't fit in memory; the
            epoch has no known length, so set ``trainer.max_steps``.
        max_len: Chunk length in tokens, special tokens included; longer documents become several chunks.
        batch_size: Chunks per batch per device.
        num_workers: DataLoader worker processes, or ``auto`` (see :mod:`embedlight.utils.hardware`).
        seed: Shuffle seed.
        prepare: Optional callable run once in ``prepare_data``.
        hf_name: Configuration name of ``hf_dataset``.
        hf_data_files: ``data_files`` for ``load_dataset`` (e.g. with ``hf_dataset=json``).
        title_field: Optional field prepended to the text (BEIR corpora: ``title``).
        min_chunk_len: Drop trailing chunks shorter than this many tokens.
        shuffle_buffer: Buffer size of the streaming shuffle.
        pad_to_multiple_of: Round padded lengths up.
        tokenize_num_proc: Processes for the (map-style) tokenisation.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        train_files: Sequence[str] | None = None,
        hf_dataset: str | None = None,
        hf_split: str = "train",
        text_field: str = "text",
        streaming: bool = False,
        max_len: int = 256,
        batch_size: int = 32,
        num_workers: int | str = "auto",  # auto: 0 on the CPU, up to 8 per GPU process
        seed: int = 42,
        prepare: Callable[[], Any] | None = None,
        hf_name: str | None = None,
        hf_data_files: Any = None,
        title_field: str | None = None,
        min_chunk_len: int = 16,
        shuffle_buffer: int = 10_000,
        pad_to_multiple_of: int | None = None,
        tokenize_num_proc: int | None = None,
    ) -> None:
        super().__init__()
        check_max_len("data.max_len", max_len, tokenizer)
        if isinstance(train_files, str):
            train_files = [train_files]
        self.train_files = [os.path.abspath(os.path.expanduser(str(f))) for f in train_files or []]
        if not self.train_files and not hf_dataset:
            raise ValueError("no pretraining data: set data.train_files=[file.jsonl] or data.hf_dataset")
        self.tokenizer = tokenizer
        self.hf_dataset = hf_dataset
        self.hf_split = hf_split
        self.hf_name = hf_name
        self.hf_data_files = hf_data_files
        self.text_field = text_field
        self.title_field = title_field
        self.streaming = streaming
        self.max_len = max_len
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.prepare = prepare
        self.min_chunk_len = min_chunk_len
        self.shuffle_buffer = shuffle_buffer
        self.pad_to_multiple_of = pad_to_multiple_of
        self.tokenize_num_proc = tokenize_num_proc
        self.dataset: datasets.Dataset | datasets.IterableDataset | None = None

    def prepare_data(self) -> None:
        """Run the configured preparation step (once, on the main process)."""
        if self.prepare is not None:
            self.prepare()

    def _raw(self) -> datasets.Dataset | datasets.IterableDataset:
        """Untokenised rows with a ``text`` column (JSONL files and/or the HF dataset)."""
        parts = []
        if self.train_files:
            stamps = []
            for path in self.train_files:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"training file not found: {path}")
                st = os.stat(path)
                stamps.append(f"{path}:{st.st_mtime}:{st.st_size}")
            kwargs = {
                "paths": self.train_files,
                "text_field": self.text_field,
                "title_field": self.title_field,
                "stamps": stamps,
            }
            features = FEATURES[RowKind.TEXT]  # explicit column types: nothing inferred from the first rows
            if self.streaming:
                parts.append(
                    datasets.IterableDataset.from_generator(_generate, features=features, gen_kwargs=kwargs)
                )
            else:
                try:
                    parts.append(
                        datasets.Dataset.from_generator(_generate, features=features, gen_kwargs=kwargs)
                    )
                except DatasetGenerationError as err:  # surface the row error (file:line: field ...)
                    if isinstance(err.__cause__, (DataFormatError, FileNotFoundError)):
                        raise err.__cause__ from None
                    raise ValueError(
                        f"{self.train_files}: could not be loaded: {err.__cause__ or err}"
                    ) from err
        if self.hf_dataset:
            ds = datasets.load_dataset(
                self.hf_dataset,
                self.hf_name,
                split=self.hf_split,
                data_files=self.hf_data_files,
                streaming=self.streaming,
            )
            columns = ds.column_names or []
            if columns and self.text_field not in columns:
                raise ValueError(
                    f"data.hf_dataset={self.hf_dataset!r} has no column {self.text_field!r} "
                    f"(columns: {columns}); set data.text_field"
                )
            if self.text_field != "text":
                ds = ds.rename_column(self.text_field, "text")
            ds = ds.select_columns(["text"])
            parts.append(ds)
        return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)

    def setup(self, stage: str | None = None) -> None:
        """Read, validate, tokenise and chunk the corpus (lazily when streaming)."""
        if self.dataset is not None:
            return
        if self.tokenizer is None:
            raise RuntimeError(
                "PretrainDataModule needs a tokenizer (the entry point injects the backbone's)"
            )
        chunker = ChunkTokenizer(self.tokenizer, self.max_len, self.min_chunk_len)
        raw = self._raw()
        if self.streaming:
            ds = raw.map(chunker, batched=True, remove_columns=["text"])
            self.dataset = ds.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
            log.info("data: streaming pretraining corpus, chunks of <= %d tokens", self.max_len)
            return
        ds = raw.map(
            chunker,
            batched=True,
            remove_columns=raw.column_names,
            num_proc=self.tokenize_num_proc,
            desc="tokenise + chunk",
        )
        self.dataset = ds
        lengths = [len(x) for x in ds["input_ids"]]
        log.info(
            "data: %d documents -> %d chunks of <= %d tokens (%d tokens in all)",
            len(raw),
            len(ds),
            self.max_len,
            sum(lengths),
        )

    def collator(self) -> PretrainCollator:
        """The padding collator for this tokenizer."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return PretrainCollator(pad, self.pad_to_multiple_of)

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches (one shard per data-parallel rank), incomplete last batch dropped.

        Both modes resume mid-epoch exactly (:class:`~embedlight.callbacks.ExactResume`): map-style
        through :class:`ShuffledBatchSampler`, streaming by replaying the epoch's first batches.
        """
        if self.dataset is None:
            self.setup("fit")
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        common = {"collate_fn": self.collator(), **loader_kwargs(self.num_workers, self.trainer)}
        if self.streaming:
            ds = self.dataset
            if world > 1:
                ds = datasets.distributed.split_dataset_by_node(ds, rank=rank, world_size=world)
            # workers must not persist: each epoch's iterator has to carry the new epoch's shuffle
            common["persistent_workers"] = False
            return ResumableDataLoader(
                _TorchIterable(ds.with_format("python")), batch_size=self.batch_size, drop_last=True, **common
            )
        sampler = ShuffledBatchSampler(len(self.dataset), self.batch_size, self.seed, rank, world)
        check_full_batch(len(sampler), len(self.dataset), "chunks", self.batch_size, world)
        return ResumableDataLoader(self.dataset, batch_sampler=sampler, **common)
