"""Sources, their per-epoch mixture, and the batch sampler that draws from it.

A batch is a list of keys ``(epoch, source, row)``; the dataset samples a row's positive and hard
negatives with an RNG seeded by that key, so an epoch is a pure function of ``(seed, epoch)``: runs
are reproducible and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset, Sampler

from embedlight.data.jsonl import RowKind
from embedlight.data.limits import check_batch_size

Key = tuple[int, int, int]  # (epoch, source index, row index)


@dataclass
class Source:
    """One training source: its rows and how to turn them into model inputs.

    Attributes:
        name: Source name (logs, errors).
        rows: A sequence of validated rows (a ``datasets.Dataset`` or a list of dicts).
        kind: :class:`~embedlight.data.jsonl.RowKind` (``triplet`` or ``pairs``; a string is parsed).
        weight: Sampling multiplier: the source contributes ``round(len(rows) * weight)`` rows per epoch.
        query_instruction: Template for queries (name from ``instructions.TEMPLATES`` or literal).
        doc_instruction: Template for documents ("" keeps documents raw).
        instruction_fields: Values for template fields such as ``{task}`` or ``{domain}``.
        in_batch_negatives: False for FlagEmbedding's ``no_in_batch_neg`` data.
        use_row_prompt: Let a row's ``prompt`` field override the query instruction.
        negatives: Per-row hard negatives served instead of the rows' ``neg`` (set by
            :meth:`~embedlight.data.datamodule.ContrastiveDataModule.set_negatives` when negatives are
            re-mined during training); None serves the rows' own.
    """

    name: str
    rows: Sequence[dict[str, Any]]
    kind: RowKind = RowKind.TRIPLET
    weight: float = 1.0
    query_instruction: str | None = None
    doc_instruction: str | None = None
    instruction_fields: dict[str, str] = field(default_factory=dict)
    in_batch_negatives: bool = True
    use_row_prompt: bool = True
    negatives: Sequence[list[str]] | None = None

    def __post_init__(self) -> None:
        self.kind = RowKind.parse(self.kind, f"data.sources.{self.name}.kind")

    def __len__(self) -> int:
        return len(self.rows)


def _row_rng(seed: int, key: Key) -> random.Random:
    return random.Random(hash((seed, *key)) & 0xFFFFFFFF)


class MixtureDataset(Dataset):
    """Map-style dataset over several sources, indexed by ``(epoch, source, row)`` keys.

    For triplet rows it samples, per epoch, one positive and ``group_size - 1`` hard negatives
    (with replacement when a row has fewer; from other rows' positives when it has none).
    """

    def __init__(self, sources: Sequence[Source], group_size: int = 8, seed: int = 42) -> None:
        if group_size < 1:
            raise ValueError(f"data.group_size must be >= 1 (1 positive + k negatives), got {group_size}")
        self.sources = list(sources)
        self.group_size = group_size
        self.seed = seed

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key: Key) -> dict[str, Any]:
        epoch, src_idx, row_idx = key
        source = self.sources[src_idx]
        row = source.rows[row_idx]
        if source.kind is RowKind.PAIRS:
            return {"source": src_idx, **row}
        rng = _row_rng(self.seed, key)
        p = rng.randrange(len(row["pos"]))
        k = self.group_size - 1
        negs: list[str] = list(
            (row.get("neg") if source.negatives is None else source.negatives[row_idx]) or []
        )
        neg_idx: list[int] | None  # indices into negs; None when negatives come from other rows
        if k == 0:
            neg_idx = []
        elif len(negs) >= k:
            neg_idx = rng.sample(range(len(negs)), k)  # same draws as rng.sample(negs, k)
        elif negs:
            neg_idx = list(range(len(negs))) + [rng.randrange(len(negs)) for _ in range(k - len(negs))]
        else:  # no mined negatives: random positives of other rows of this source
            neg_idx = None
            chosen: list[str] = []
            while len(chosen) < k and len(source) > 1:
                other = rng.randrange(len(source))
                if other != row_idx:
                    cand = source.rows[other]["pos"]
                    chosen.append(cand[rng.randrange(len(cand))])
            if len(chosen) < k:
                raise ValueError(f"source {source.name!r}: cannot draw negatives from a single row")
        if neg_idx is not None:
            chosen = [negs[j] for j in neg_idx]
        item = {
            "source": src_idx,
            "query": row["query"],
            "docs": [row["pos"][p], *chosen],
            "prompt": row.get("prompt"),
        }
        pos_scores, neg_scores = row.get("pos_scores"), row.get("neg_scores")
        if source.negatives is not None:  # re-mined negatives: the file's scores belong to its own negatives
            neg_scores = None
        if pos_scores is not None and neg_idx is not None and (neg_scores is not None or not neg_idx):
            item["teacher_scores"] = [pos_scores[p], *(neg_scores[j] for j in neg_idx)]  # (G,)
        return item


def row_lengths(source: Source) -> list[int]:
    """Length proxy (characters) of every row: query + mean positive for triplets, text1 + text2 for pairs.

    A ``datasets.Dataset`` is read in Arrow batches with Arrow compute (no Python string per row), so
    only one int per row is held in RAM however large the file (see README, "Data larger than RAM").
    """
    rows = source.rows
    if hasattr(rows, "with_format"):
        return _arrow_lengths(rows, source.kind)
    if source.kind is RowKind.PAIRS:
        return [len(r["text1"]) + len(r["text2"]) for r in rows]
    return [len(r["query"]) + sum(len(p) for p in r["pos"]) // max(1, len(r["pos"])) for r in rows]


def _arrow_lengths(rows: Any, kind: RowKind | str, batch_size: int = 65536) -> list[int]:
    import numpy as np
    import pyarrow.compute as pc

    def chars(column: Any) -> np.ndarray:
        return pc.utf8_length(column).to_numpy(zero_copy_only=False).astype(np.int64)

    kind = RowKind.parse(kind)
    out: list[int] = []
    for table in rows.with_format("arrow").iter(batch_size=batch_size):
        if kind is RowKind.PAIRS:
            out.extend((chars(table["text1"]) + chars(table["text2"])).tolist())
            continue
        pos = table["pos"].combine_chunks()  # list<string>, one list per row
        parent = pc.list_parent_indices(pos).to_numpy(zero_copy_only=False)
        total = np.bincount(parent, weights=chars(pc.list_flatten(pos)), minlength=len(pos)).astype(np.int64)
        count = np.maximum(pc.list_value_length(pos).to_numpy(zero_copy_only=False), 1)
        out.extend((chars(table["query"]) + total // count).tolist())
    return out


class MixtureBatchSampler(Sampler[list[Key]]):
    """Per-epoch batches over a weighted mixture of sources, with all data-parallel ranks in step.

    Batches never mix schemas (triplets vs scored pairs) nor in-batch-negative settings; with
    ``one_source_per_batch`` they never mix sources either (FlagEmbedding's ``same_dataset_within_batch``).
    Under data parallelism the epoch is cut into *global* batches of ``world_size * batch_size`` rows,
    each from one bucket, and rank ``r`` takes rows ``[r*B, (r+1)*B)`` of every global batch: at every
    step all ranks train on the same bucket (the same loss, the same collectives), and every rank has
    the same number of batches. The global batches depend on ``world_size * batch_size`` only, so a
    1-process run with ``batch_size = W*B`` sees exactly the union of the ranks' batches.

    Within a global batch a row is not repeated while the bucket has enough distinct rows (weights
    above 1 repeat a source; a repeated row would score its positive as its own negative): a repeat is
    deferred to a later batch of the same bucket (see :func:`distinct_chunks`).

    Args:
        sources: The sources.
        batch_size: Queries per batch per rank.
        one_source_per_batch: Draw each batch from one source.
        seed: Base seed; epoch ``e`` is a pure function of ``(seed, e)``.
        drop_last: Drop a bucket's last incomplete batch (keeps shapes equal across ranks); must be
            True when ``world_size > 1``.
        rank: This process's data-parallel rank.
        world_size: Number of data-parallel ranks.
        group_by_length: Less padding: after the epoch's shuffle, cut each bucket into mega-batches of
            ``batch_size * megabatch_mult`` rows, sort each by length (longest first) and cut it into
            batches; the batches are then shuffled. Still a pure function of ``(seed, epoch)``.
        megabatch_mult: Batches per mega-batch (50, as transformers' ``LengthGroupedSampler``).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        batch_size: int,
        one_source_per_batch: bool = False,
        seed: int = 42,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        group_by_length: bool = False,
        megabatch_mult: int = 50,
    ) -> None:
        check_batch_size(batch_size)
        if world_size > 1 and not drop_last:
            raise ValueError("drop_last=False cannot split a bucket's last partial batch over several ranks")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.sources = list(sources)
        self.batch_size = batch_size
        self.one_source_per_batch = one_source_per_batch
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.group_by_length = group_by_length
        self.megabatch_mult = max(1, int(megabatch_mult))
        self._lengths: list[list[int]] | None = None
        self.epoch = 0
        self._skip = 0

    @property
    def global_batch_size(self) -> int:
        """Rows per step over all ranks: ``world_size * batch_size``."""
        return self.world_size * self.batch_size

    def lengths(self) -> list[list[int]]:
        """Per source, per row: a length proxy in characters (query + mean positive, or both texts)."""
        if self._lengths is None:
            self._lengths = [row_lengths(s) for s in self.sources]
        return self._lengths

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (called by Lightning before each epoch)."""
        self.epoch = epoch

    def skip_batches(self, n: int) -> None:
        """Skip the first ``n`` batches of the next iteration (mid-epoch resume)."""
        self._skip = n

    def bucket(self, idx: int) -> Any:
        """The bucket of source ``idx``: its index, or its ``(kind, in_batch_negatives)``."""
        s = self.sources[idx]
        return idx if self.one_source_per_batch else (s.kind, s.in_batch_negatives)

    def _bucket_sizes(self) -> dict[Any, int]:
        sizes: dict[Any, int] = {}
        for s_idx, source in enumerate(self.sources):
            key = self.bucket(s_idx)
            sizes[key] = sizes.get(key, 0) + int(round(len(source) * source.weight))
        return sizes

    def global_batches(self, epoch: int) -> list[list[Key]]:
        """All global batches (``world_size * batch_size`` rows each) of ``epoch``, in order."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        size = self.global_batch_size
        buckets: dict[Any, list[Key]] = {}
        for s_idx, source in enumerate(self.sources):
            n = len(source)
            want = int(round(n * source.weight))
            order: list[int] = []
            while len(order) < want:  # weights > 1 repeat the source, each pass reshuffled
                perm = list(range(n))
                rng.shuffle(perm)
                order.extend(perm)
            buckets.setdefault(self.bucket(s_idx), []).extend((epoch, s_idx, r) for r in order[:want])
        batches: list[list[Key]] = []
        lengths = self.lengths() if self.group_by_length else None
        for keys in buckets.values():
            rng.shuffle(keys)
            if lengths is not None:
                mega = size * self.megabatch_mult
                keys = [
                    k
                    for start in range(0, len(keys), mega)
                    for k in sorted(keys[start : start + mega], key=lambda k: -lengths[k[1]][k[2]])
                ]
            for chunk in distinct_chunks(keys, size):
                if len(chunk) == size or not self.drop_last:
                    batches.append(chunk)
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[Key]]:
        skip, self._skip = self._skip, 0
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in self.global_batches(self.epoch)[skip:]:
            yield batch[lo:hi]

    def __len__(self) -> int:
        size = self.global_batch_size
        ceil = not self.drop_last
        return sum((n + size - 1) // size if ceil else n // size for n in self._bucket_sizes().values())


def distinct_chunks(keys: Sequence[Key], size: int, max_deferred: int | None = None) -> list[list[Key]]:
    """Cut ``keys`` into chunks of ``size`` in which no ``(source, row)`` appears twice, where possible.

    Walks ``keys`` in order; a key whose row is already in the current chunk is deferred and placed
    first in a later chunk that does not hold it yet. Every key lands in exactly one chunk, so the
    chunk count equals that of plain slicing (the last chunk may be short). Repeats are allowed only
    when they cannot be avoided: the bucket has fewer distinct rows than ``size``, or more than
    ``max_deferred`` keys (default ``4 * size``) wait (this bounds the work per chunk).

    Args:
        keys: ``(epoch, source, row)`` keys in sampling order.
        size: Chunk size (the global batch size).
        max_deferred: Cap on waiting keys before repeats are let in.

    Returns:
        The chunks, in order.
    """
    cap = 4 * size if max_deferred is None else max_deferred
    if len({k[1:] for k in keys}) < size:  # too few distinct rows: repeats are unavoidable
        return [list(keys[i : i + size]) for i in range(0, len(keys), size)]
    chunks: list[list[Key]] = []
    deferred: list[Key] = []
    stream = iter(keys)
    exhausted = False
    while not exhausted or deferred:
        chunk: list[Key] = []
        seen: set[tuple[int, int]] = set()
        waiting: list[Key] = []
        for k in deferred:  # earlier repeats first
            if len(chunk) < size and k[1:] not in seen:
                chunk.append(k)
                seen.add(k[1:])
            else:
                waiting.append(k)
        deferred = waiting
        while len(chunk) < size and not exhausted:
            k = next(stream, None)
            if k is None:
                exhausted = True
            elif k[1:] not in seen or len(deferred) >= cap:
                chunk.append(k)
                seen.add(k[1:])
            else:
                deferred.append(k)
        if exhausted and len(chunk) < size and deferred:  # only repeats are left: let them in
            while len(chunk) < size and deferred:
                chunk.append(deferred.pop(0))
        if chunk:
            chunks.append(chunk)
    return chunks
