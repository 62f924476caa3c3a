"""``embedlight-registry``: list every registered component (backbones, poolers, losses, ...) with its
config defaults, i.e. what ``pooler=<name>``, ``loss=<name>``, ... accept.

Examples:
    embedlight-registry                        # every group
    embedlight-registry groups=pooler          # one group
    embedlight-registry groups=[pooler,loss]

It writes no file. The library call is :func:`embedlight.registry.describe`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.registry import describe
from embedlight.utils.outputs import plain


@hydra.main(config_path="../conf", config_name="registry", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.registry.describe`."""
    print(describe(plain(cfg.get("groups"))))


if __name__ == "__main__":
    main()
