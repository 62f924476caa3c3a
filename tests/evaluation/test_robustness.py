"""Instruction robustness: per-instruction runs, mean and best-minus-worst on a fake encoder whose
embeddings depend on the instruction."""

from __future__ import annotations

import pytest
import torch

from embedlight.evaluation import InstructionRobustnessEvaluator, PairClassificationEvaluator
from embedlight.evaluation.robustness import DEFAULT_PARAPHRASES


class InstructionSensitive:
    """Under instruction "good", pair (a, b) is similar and (c, d) not; under "bad" the reverse."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        self.seen.append((kind, instruction))
        good = {"a": [1, 0], "b": [1, 0.1], "c": [1, 0], "d": [0, 1]}
        bad = {"a": [1, 0], "b": [0, 1], "c": [1, 0], "d": [1, 0.1]}
        table = good if instruction == "good" else bad
        return torch.tensor([table[t] for t in texts], dtype=torch.float32)


def test_reports_each_mean_and_gap(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a\tb\t1\nc\td\t0\n")
    inner = PairClassificationEvaluator(str(path), name="p")
    ev = InstructionRobustnessEvaluator(inner, instructions=["good", "bad", "good"])
    enc = InstructionSensitive()
    out = ev(enc)
    # good: positive ranked first -> AP 1; bad: negative first -> AP = 1/2
    assert [out[f"p/instr{i}/ap"] for i in range(3)] == pytest.approx([1.0, 0.5, 1.0])
    assert out["p/mean/ap"] == pytest.approx(2.5 / 3)
    assert out["p/best_minus_worst/ap"] == pytest.approx(0.5)
    assert [instr for _, instr in enc.seen] == ["good", "bad", "good"]


def test_defaults_are_five_distinct_paraphrases_per_task_type():
    for task_type, paraphrases in DEFAULT_PARAPHRASES.items():
        assert len(paraphrases) == 5 and len(set(paraphrases)) == 5, task_type
    with pytest.raises(ValueError, match="no default paraphrases"):
        InstructionRobustnessEvaluator(
            PairClassificationEvaluator.__new__(PairClassificationEvaluator), task_type="x", name="n"
        )
