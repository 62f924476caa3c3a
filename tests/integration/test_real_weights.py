"""Real-weight runs (marked slow: `make test-all`)."""

from __future__ import annotations

import json

import pytest

from embedlight.training.run import run
from tests.helpers import compose_cfg


@pytest.mark.slow
def test_quickstart_on_minilm_and_bbc(tmp_path):
    """The demo's configuration for a few steps: real MiniLM, real BBC data, before/after metrics, export."""
    cfg = compose_cfg(
        [
            "experiment=quickstart",
            f"paths.output_dir={tmp_path}/out",
            f"paths.data_dir={tmp_path}/data",
            "trainer.max_steps=3",
            "data.batch_size=8",
        ]
    )
    result = run(cfg)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["before"]["bbc/ndcg@10"] > 0.8  # the pretrained model already retrieves well
    assert abs(metrics["after"]["bbc/ndcg@10"] - metrics["before"]["bbc/ndcg@10"]) < 0.1
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(result["export"], device="cpu")
    assert st.encode(["a title"]).shape == (1, 384)
