"""GradCache: a contrastive loss over a batch larger than memory allows, with exact gradients.

Reference: Gao, Zhang, Han and Callan, 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup" (GradCache). The loss of a contrastive batch couples every embedding with every
other one, so splitting the batch changes the loss (fewer negatives); GradCache splits only the
*encoder* work:

1. embed the batch in chunks of ``chunk_size`` texts without a graph, saving each chunk's RNG state;
2. compute the loss over the full (cross-device) batch of embeddings and its gradient with respect to
   the embeddings (cheap: the graph holds only the similarity matrix);
3. re-embed each chunk with a graph, replaying its RNG state so that dropout masks match the first
   pass, and backpropagate the cached embedding gradient into the weights; one chunk's activations
   are alive at a time.

The parameter gradients equal those of one backward over the whole batch. Peak activation memory is
that of one chunk, at the cost of a second encoder forward. The runner is independent of the
LightningModule: :class:`~embedlight.modules.contrastive.ContrastiveModule` and its subclasses call it
from ``training_step`` with their own encode, loss and backward functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

Features = Mapping[str, torch.Tensor]


class RngState:
    """The CPU and (initialised) CUDA generator states at one point, to replay a forward's randomness."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from this state; the global generators are left as they were before it."""
        devices = list(range(len(self.cuda))) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def split_features(features: Features, chunk_size: int) -> list[dict[str, torch.Tensor]]:
    """Split a tokenised batch into chunks of at most ``chunk_size`` rows (every tensor along dim 0).

    Padding is kept as in the full batch, so that each text sees the same positions and mask in a
    chunk as in the batch (left-padded decoders number positions from the first column).
    """
    rows = next(iter(features.values())).size(0)
    return [
        {k: v[start : start + chunk_size] for k, v in features.items()}
        for start in range(0, rows, chunk_size)
    ]


class GradCache:
    """Runs one GradCache step: chunked graph-free embedding, full-batch loss, chunked backward.

    Args:
        chunk_size: Texts per encoder forward (queries and documents are chunked separately).
    """

    def __init__(self, chunk_size: int) -> None:
        if chunk_size < 1:
            raise ValueError(
                f"module.grad_cache_chunk_size must be >= 1 (or null/0 for off), got {chunk_size}"
            )
        self.chunk_size = int(chunk_size)

    def __call__(
        self,
        encode: Callable[[Features], torch.Tensor],
        inputs: Sequence[Features],
        loss_fn: Callable[..., torch.Tensor],
        backward: Callable[[torch.Tensor], Any],
        no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
        sync: bool = True,
    ) -> torch.Tensor:
        """Compute the loss of the full batch and accumulate its parameter gradients chunk by chunk.

        Args:
            encode: Maps a tokenised chunk to its embeddings, (b, D).
            inputs: Tokenised batches, one per loss argument (e.g. queries and documents).
            loss_fn: Called with one (N_i, D) embedding tensor per input; returns a scalar.
            backward: Backpropagates a scalar (``LightningModule.manual_backward``).
            no_sync: Context manager that suspends the data-parallel gradient all-reduce (DDP's
                ``no_sync``); every chunk's backward but the last runs inside it, so gradients are
                reduced once per step. None: single process.
            sync: Reduce on the last chunk; False keeps all of them local (gradient accumulation).

        Returns:
            The detached loss.
        """
        chunks = [split_features(f, self.chunk_size) for f in inputs]
        states: list[list[RngState]] = []
        embeddings: list[torch.Tensor] = []
        with torch.no_grad():
            for parts in chunks:
                states.append([])
                outs = []
                for part in parts:
                    states[-1].append(RngState())
                    outs.append(encode(part))  # (b, D)
                embeddings.append(torch.cat(outs))  # (N_i, D)

        leaves = [e.detach().requires_grad_() for e in embeddings]
        with torch.enable_grad():
            loss = loss_fn(*leaves)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]

        order = [(i, j) for i, parts in enumerate(chunks) for j in range(len(parts))]
        for n, (i, j) in enumerate(order):
            last = n == len(order) - 1
            quiet = no_sync is not None and (not last or not sync)
            start = j * self.chunk_size
            grad = grads[i][start : start + self.chunk_size]  # (b, D)
            with states[i][j].replay(), no_sync() if quiet else contextlib.nullcontext():
                emb = encode(chunks[i][j])  # (b, D)
                backward((emb * grad.to(emb.dtype)).sum())  # d/dθ <emb, dL/demb> = dL/dθ via this chunk
        return loss.detach()
