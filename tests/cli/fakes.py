"""Stand-ins that commands build through ``_target_`` in tests."""

from __future__ import annotations

import json
from typing import Any

from embedlight.engine.synth.backends import Reply


class NumberedChat:
    """A chat backend whose n-th reply is a valid, unique example (extra config keys are ignored)."""

    def __init__(self, **_: Any) -> None:
        self.n = 0

    def chat(self, messages: list[dict[str, str]]) -> Reply:
        self.n += 1
        example = {
            "query": f"question number {self.n}",
            "positive": f"A passage that answers question {self.n}.",
            "hard_negative": f"A passage that only mentions question {self.n}.",
        }
        return Reply(json.dumps(example))
