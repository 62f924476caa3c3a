"""``embedlight-matmul-peak``: measure this machine's matmul TFLOP/s (fp32, bf16; fp16 on a GPU), the
peak that ``TokenThroughput``'s MFU is relative to.

Examples:
    embedlight-matmul-peak                                  # print the table
    embedlight-matmul-peak save=true                        # also cache it for MFU logging
    embedlight-matmul-peak output=peak.json size=8192 seconds=2 device=cuda

An existing ``output`` is refused unless ``overwrite=true``; the MFU cache is replaced by every
``save=true``. The library call is :func:`embedlight.utils.matmul_peak.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.utils.matmul_peak import run


@hydra.main(config_path="../conf", config_name="matmul_peak", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.utils.matmul_peak.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
