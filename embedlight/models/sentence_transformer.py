"""The sentence-transformers adapter: any saved model behind the evaluators' ``TextEncoder`` protocol."""

from __future__ import annotations

from typing import Any

import torch

from embedlight.backbones.loading import capture_loading_reports, check_loading_info
from embedlight.backbones.resolve import resolve_pretrained


class SentenceTransformerEncoder:
    """Adapts a ``SentenceTransformer`` to the evaluators' ``TextEncoder`` protocol.

    ``instruction=None`` uses the model's saved prompt for ``kind`` (``query``/``document``) if it has
    one; a string is used as the prompt verbatim. A checkpoint with missing tensors is refused
    (:mod:`embedlight.backbones.loading`) instead of evaluated with random-init layers.
    """

    def __init__(self, model_name: str, device: str | None = None, trust_remote_code: bool = False) -> None:
        from sentence_transformers import SentenceTransformer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        source = resolve_pretrained(model_name)
        with capture_loading_reports() as reports:
            self.model = SentenceTransformer(source, device=device, trust_remote_code=trust_remote_code)
        for where, info in reports:
            if info is not None:
                check_loading_info(where or source, info.missing_keys, info.mismatched_keys)

    def encode(
        self,
        texts: list[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if instruction is not None:
            kwargs["prompt"] = instruction
        elif kind in (self.model.prompts or {}):
            kwargs["prompt_name"] = kind
        emb = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_tensor=True,
            **kwargs,
        )
        return emb.float().cpu()

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (used e.g. to measure passkey documents in tokens)."""
        return self.model.tokenizer
