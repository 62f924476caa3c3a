"""LightningDataModule for contrastive fine-tuning on a mixture of JSONL sources."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import datasets
import lightning as L
from datasets.exceptions import DatasetGenerationError
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from embedlight.data.collator import ContrastiveCollator
from embedlight.data.jsonl import FEATURES, RowKind, read_jsonl, sniff_kind
from embedlight.data.limits import check_full_batch, check_max_len
from embedlight.data.loader import ResumableDataLoader
from embedlight.data.mixture import MixtureBatchSampler, MixtureDataset, Source
from embedlight.utils.hardware import loader_kwargs
from embedlight.utils.io import DataFormatError

log = logging.getLogger(__name__)


def _generate(path: str, kind: str, mtime: float, size: int):  # mtime/size key the Arrow cache
    yield from read_jsonl(path, kind)


def load_rows(
    files: Sequence[str], kind: RowKind | str | None = None, key: str = "kind"
) -> tuple[datasets.Dataset, RowKind]:
    """Read and validate JSONL files into one Arrow-backed ``datasets.Dataset``.

    Every file is validated row by row (a malformed row raises
    :class:`~embedlight.data.jsonl.DataFormatError` naming file, line and field); the result is cached
    by ``datasets`` and keyed on each file's path, size and modification time. Column types come from
    the schema's explicit ``datasets.Features`` (never inferred from the first rows), so optional
    fields (``neg``, ``prompt``, ``pos_scores``, ...) absent from a file's first rows are fine.
    ``kind`` (None: sniffed per file) is the config value at ``key``, named when it is not a kind.
    """
    kind = None if kind is None else RowKind.parse(kind, key)
    parts, kinds = [], set()
    for path in files:
        path = os.path.abspath(os.path.expanduser(str(path)))
        file_kind = kind or sniff_kind(path)
        if file_kind not in (RowKind.TRIPLET, RowKind.PAIRS):
            raise ValueError(
                f"{path}: contrastive training needs triplet or scored-pair rows, found '{file_kind}'"
            )
        kinds.add(file_kind)
        stat = os.stat(path)
        gen_kwargs = {"path": path, "kind": file_kind.value, "mtime": stat.st_mtime, "size": stat.st_size}
        try:
            parts.append(
                datasets.Dataset.from_generator(
                    _generate, features=FEATURES[file_kind], gen_kwargs=gen_kwargs
                )
            )
        except DatasetGenerationError as err:  # surface our own file:line:field message
            if isinstance(err.__cause__, (DataFormatError, FileNotFoundError)):
                raise err.__cause__ from None
            raise ValueError(f"{path}: could not be loaded: {err.__cause__ or err}") from err
    if len(kinds) > 1:
        schemas = sorted(k.value for k in kinds)
        raise ValueError(f"files {list(files)} mix schemas {schemas}; put them in separate sources")
    rows = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return rows, kinds.pop()


class ContrastiveDataModule(L.LightningDataModule):
    """Training data for the contrastive recipe.

    Args:
        tokenizer: The backbone's tokenizer (injected by the entry point).
        train_files: Shorthand: JSONL files that each become a source with the default settings.
            ``data.train_files=[my.jsonl]`` trains on your own data.
        sources: ``{name: {files, weight, query_instruction, doc_instruction, instruction_fields,
            in_batch_negatives, use_row_prompt, kind}}`` for mixtures; merged with ``train_files``.
        batch_size: Queries per batch per device.
        group_size: Documents per query: 1 positive + ``group_size - 1`` hard negatives.
        query_max_len: Query token limit (instruction included).
        passage_max_len: Document token limit.
        query_instruction: Default query template for every source (``bge``, ``e5``, a literal, ...).
        doc_instruction: Default document template ("" = raw documents).
        instruction_fields: Default template fields (``{task: ..., domain: ...}``).
        one_source_per_batch: Draw each batch from a single source.
        num_workers: DataLoader worker processes, or ``auto`` (see :mod:`embedlight.utils.hardware`).
        seed: Seed of the epoch order and of negative sampling.
        append_eos: Append [EOS] (set from the backbone by the entry point).
        pad_to_multiple_of: Round padded lengths up.
        prepare: Optional callable run once in ``prepare_data`` (e.g. building the demo dataset).
        group_by_length: Batch rows of similar length together (less padding; see
            :class:`~embedlight.data.mixture.MixtureBatchSampler`). Off by default.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        train_files: Sequence[str] | None = None,
        sources: Mapping[str, Mapping[str, Any]] | None = None,
        batch_size: int = 32,
        group_size: int = 8,  # 1 positive + 7 hard negatives, as FlagEmbedding
        query_max_len: int = 64,
        passage_max_len: int = 256,
        query_instruction: str | None = None,  # template name (bge, e5, e5_mistral, instructor) or literal
        doc_instruction: str | None = None,  # documents raw by default
        instruction_fields: Mapping[str, str] | None = None,
        one_source_per_batch: bool = False,
        num_workers: int | str = "auto",  # auto: 0 on the CPU, up to 8 per GPU process
        seed: int = 42,
        append_eos: bool = False,
        pad_to_multiple_of: int | None = None,
        prepare: Callable[[], Any] | None = None,
        group_by_length: bool = False,
    ) -> None:
        super().__init__()
        check_max_len("data.query_max_len", query_max_len, tokenizer, int(append_eos))
        check_max_len("data.passage_max_len", passage_max_len, tokenizer, int(append_eos))
        self.tokenizer = tokenizer
        self.specs = self._specs(train_files, sources)
        self.batch_size = batch_size
        self.group_size = group_size
        self.query_max_len = query_max_len
        self.passage_max_len = passage_max_len
        self.defaults = {
            "query_instruction": query_instruction,
            "doc_instruction": doc_instruction,
            "instruction_fields": dict(instruction_fields or {}),
        }
        self.one_source_per_batch = one_source_per_batch
        self.num_workers = num_workers
        self.seed = seed
        self.append_eos = append_eos
        self.pad_to_multiple_of = pad_to_multiple_of
        self.prepare = prepare
        self.group_by_length = group_by_length
        self.sources: list[Source] = []
        self.batch_sampler: MixtureBatchSampler | None = None
        self.negatives_version = 0  # 0 = the files' own negatives; >0 = re-mined (RefreshNegatives)

    @staticmethod
    def _specs(train_files: Sequence[str] | None, sources: Mapping[str, Mapping[str, Any]] | None) -> dict:
        specs: dict[str, dict[str, Any]] = {str(k): dict(v) for k, v in (sources or {}).items()}
        if isinstance(train_files, str):
            train_files = [train_files]
        for path in train_files or []:
            name = os.path.splitext(os.path.basename(str(path)))[0]
            while name in specs:
                name += "_"
            specs[name] = {"files": [str(path)]}
        if not specs:
            raise ValueError("no training data: set data.train_files=[file.jsonl] or data.sources")
        for name, spec in specs.items():
            files = spec.get("files")
            if not files:
                raise ValueError(f"data.sources.{name}: 'files' is empty")
            spec["files"] = [files] if isinstance(files, str) else list(files)
        return specs

    def prepare_data(self) -> None:
        """Run the configured preparation step (once, on the main process)."""
        if self.prepare is not None:
            self.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Load and validate every source."""
        if self.sources:
            return
        allowed = {
            "files",
            "weight",
            "query_instruction",
            "doc_instruction",
            "instruction_fields",
            "in_batch_negatives",
            "use_row_prompt",
            "kind",
        }
        for name, spec in self.specs.items():
            unknown = set(spec) - allowed
            if unknown:
                raise ValueError(
                    f"data.sources.{name}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
            rows, kind = load_rows(spec["files"], spec.get("kind"), f"data.sources.{name}.kind")
            in_batch = spec.get("in_batch_negatives")
            if in_batch is None:  # FlagEmbedding's convention: folders named *no_in_batch_neg*
                in_batch = not any("no_in_batch_neg" in f for f in spec["files"])
            fields = {**self.defaults["instruction_fields"], **dict(spec.get("instruction_fields") or {})}
            source = Source(
                name=name,
                rows=rows,
                kind=kind,
                weight=float(spec.get("weight", 1.0)),
                query_instruction=spec.get("query_instruction", self.defaults["query_instruction"]),
                doc_instruction=spec.get("doc_instruction", self.defaults["doc_instruction"]),
                instruction_fields=fields,
                in_batch_negatives=bool(in_batch),
                use_row_prompt=bool(spec.get("use_row_prompt", True)),
            )
            log.info("data: source %s: %d %s rows, weight %.2f", name, len(rows), kind, source.weight)
            self.sources.append(source)

    def set_negatives(self, version: int, negatives: Mapping[str, Sequence[list[str]]]) -> None:
        """Serve re-mined hard negatives (ANCE-style refresh) from now on.

        Args:
            version: Version of the mined negatives (kept in checkpoints by the refresh callback).
            negatives: Source name -> one list of negatives per row, in row order; sources not named keep
                their current negatives.
        """
        by_name = {s.name: s for s in self.sources}
        for name, negs in negatives.items():
            if name not in by_name:
                raise KeyError(f"set_negatives: unknown source {name!r}; sources: {sorted(by_name)}")
            if len(negs) != len(by_name[name]):
                raise ValueError(
                    f"set_negatives: {len(negs)} rows of negatives for {len(by_name[name])} rows of {name!r}"
                )
            by_name[name].negatives = [list(n) for n in negs]
        self.negatives_version = version

    def collator(self) -> ContrastiveCollator:
        """The collator for this data and tokenizer."""
        if self.tokenizer is None:
            raise RuntimeError(
                "ContrastiveDataModule needs a tokenizer (the entry point injects the backbone's)"
            )
        return ContrastiveCollator(
            self.tokenizer,
            self.sources,
            self.query_max_len,
            self.passage_max_len,
            self.append_eos,
            self.pad_to_multiple_of,
        )

    def train_dataloader(self) -> DataLoader:
        """A DataLoader over the mixture; one shard of every epoch per data-parallel rank."""
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        self.batch_sampler = MixtureBatchSampler(
            self.sources,
            self.batch_size,
            self.one_source_per_batch,
            self.seed,
            drop_last=True,
            rank=rank,
            world_size=world,
            group_by_length=self.group_by_length,
        )
        rows = sum(len(s) for s in self.sources)
        check_full_batch(len(self.batch_sampler), rows, "rows", self.batch_size, world)
        return ResumableDataLoader(
            MixtureDataset(self.sources, self.group_size, self.seed),
            batch_sampler=self.batch_sampler,
            collate_fn=self.collator(),
            **loader_kwargs(self.num_workers, self.trainer),
        )
