"""Command-line entry points: each ``embedlight-*`` command is one file here, a thin Hydra main over a
library function ``run(cfg)`` that lives in its own layer (see ARCHITECTURE.md).

Every command's root config is ``conf/<command>.yaml`` (``embedlight-matmul-peak`` ->
``conf/matmul_peak.yaml``). Its ``--help`` (``conf/hydra/help/embedlight.yaml``) prints the module
docstring of ``embedlight/cli/<command>.py``, found by Hydra's job name, then the composed config.
"""

from __future__ import annotations

import importlib

from omegaconf import OmegaConf


def command_doc(job_name: str) -> str:
    """The docstring of ``embedlight.cli.<job_name>`` (``$`` escaped for Hydra's help template)."""
    try:
        doc = importlib.import_module(f"{__name__}.{job_name}").__doc__ or ""
    except ImportError:
        doc = ""
    return (doc.strip() or f"embedlight-{job_name.replace('_', '-')}").replace("$", "$$")


OmegaConf.register_new_resolver("embedlight.command_doc", command_doc, replace=True)
