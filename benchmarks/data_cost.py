"""Cost of embedlight's data path alone: collation (tokenise + pad, per-row Python included) and padding.

Iterates one epoch of the BBC training batches through the real DataLoader (no model) and reports
milliseconds per batch and the pad fraction, with and without ``group_by_length``. Compare the
ms/batch with a training step (seconds on a CPU) to see whether the data path matters.

Usage: ``python benchmarks/data_cost.py [--max-len 128] [--group-size 1] [--batch-size 32]``
"""

from __future__ import annotations

import argparse
import os
import time

from embedlight.backbones.resolve import resolve_pretrained
from embedlight.callbacks.throughput import count_slots, count_tokens
from embedlight.data import ContrastiveDataModule

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def epoch_cost(tokenizer, train: str, args: argparse.Namespace, group_by_length: bool) -> dict[str, float]:
    dm = ContrastiveDataModule(
        tokenizer=tokenizer,
        train_files=[train],
        batch_size=args.batch_size,
        group_size=args.group_size,
        query_max_len=args.max_len,
        passage_max_len=args.max_len,
        group_by_length=group_by_length,
    )
    dm.setup()
    loader = dm.train_dataloader()
    start = time.perf_counter()
    tokens = slots = batches = 0
    for batch in loader:
        tokens += count_tokens(batch)
        slots += count_slots(batch)
        batches += 1
    secs = time.perf_counter() - start
    return {"batches": batches, "ms_per_batch": 1000 * secs / batches, "pad_fraction": 1 - tokens / slots}


def main() -> None:
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--group-size", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data"))
    args = parser.parse_args()
    train = os.path.join(args.data_dir, "bbc", "train.jsonl")
    if not os.path.exists(train):
        from embedlight.data.builders.bbc import prepare_bbc

        prepare_bbc(os.path.join(args.data_dir, "bbc"))
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained("all-MiniLM-L6-v2"))
    for grouped in (False, True):
        r = epoch_cost(tokenizer, train, args, grouped)
        print(
            f"group_by_length={grouped!s:<5} {r['batches']} batches: {r['ms_per_batch']:.1f} ms/batch "
            f"(collate), pad fraction {r['pad_fraction']:.1%}"
        )


if __name__ == "__main__":
    main()
