"""The commands as pyproject.toml declares them, read from the file (every test loops over these)."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]


def scripts() -> dict[str, str]:
    """``{script: "module:function"}`` of ``[project.scripts]`` in pyproject.toml."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[project\.scripts\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
    assert section, "pyproject.toml has no [project.scripts]"
    pairs = re.findall(r'^\s*([\w.-]+)\s*=\s*"([^"]+)"', section.group(1), re.M)
    return dict(pairs)


def config_name(script: str) -> str:
    """``embedlight-matmul-peak`` -> ``matmul_peak``: the command's file in cli/ and its root config."""
    return script.removeprefix("embedlight-").replace("-", "_")
