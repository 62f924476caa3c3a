"""Dataset building as a library call: ``run(cfg)`` builds the dataset that ``cfg.dataset`` names
(``embedlight-prepare`` is a thin Hydra main over it; the builders are ``conf/dataset/*.yaml``).

A builder is a function ``(out_dir, ..., rebuild=False) -> summary dict`` that writes its files under
``out_dir`` and reuses a matching earlier build unless ``rebuild``; its config is a ``_partial_`` node
(the same node a training data config may call as its ``prepare`` step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import OmegaConf

from embedlight.utils.outputs import guard_output, plain, write_summary


def run(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Build ``cfg.dataset`` into its ``out_dir``; returns (and prints) the builder's summary.

    A folder that is not empty is refused unless ``overwrite=true``, which rebuilds the dataset there
    (files of other origin in the folder are left alone).
    """
    spec = cfg.get("dataset")
    if not spec:
        raise ValueError("nothing to prepare: pick a dataset, e.g. dataset=bbc or dataset=icl_english")
    out = spec["out_dir"]
    overwrite = bool(cfg.get("overwrite", False))
    guard_output(out, overwrite, key="dataset.out_dir", what="files")
    summary = plain(instantiate(spec)(rebuild=overwrite))
    lines = [f"prepared {out}:"]
    lines += ["  " + line for line in OmegaConf.to_yaml(summary).splitlines()]
    return write_summary(None, summary, lines)
