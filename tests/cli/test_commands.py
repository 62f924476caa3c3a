"""Every command has one shape: ``embedlight-<name>`` is ``embedlight.cli.<name>:main``, a Hydra main with
``config_path="../conf"`` over root config ``conf/<name>.yaml``; its ``--help`` works and shows its
docstring; and the README's command table lists exactly the commands pyproject.toml installs."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from tests.cli.commands import REPO, config_name, scripts

SCRIPTS = scripts()
CONF = REPO / "embedlight" / "conf"
CLI = REPO / "embedlight" / "cli"


def test_pyproject_declares_the_commands():
    assert "embedlight-train" in SCRIPTS and len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_command_is_a_thin_hydra_main_over_its_root_config(script):
    name = config_name(script)
    assert SCRIPTS[script] == f"embedlight.cli.{name}:main"
    assert (CONF / f"{name}.yaml").is_file(), f"{script}: no root config conf/{name}.yaml"
    tree = ast.parse((CLI / f"{name}.py").read_text(encoding="utf-8"))
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert len(mains) == 1, f"{script}: cli/{name}.py must define one main()"
    (decorator,) = mains[0].decorator_list
    assert ast.unparse(decorator.func) == "hydra.main"
    kwargs = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords}
    assert kwargs["config_path"] == "../conf" and kwargs["config_name"] == name
    # thin: the body calls one library function (no argv handling, no argparse, no file writing)
    body = [n for n in mains[0].body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) <= 2, f"{script}: main() should only call its library function"
    source = (CLI / f"{name}.py").read_text(encoding="utf-8")
    assert "sys.argv" not in source and "argparse" not in source


# Runs every entry point's --help in one child process (one import of torch instead of one per command),
# the way a console script calls it: sys.argv = [script, "--help"]; main().
_HELP_RUNNER = """
import contextlib, io, json, sys
from hydra.core.global_hydra import GlobalHydra
results = {}
for script, target in json.loads(sys.argv[1]).items():
    module, func = target.split(":")
    sys.argv = [script, "--help"]
    GlobalHydra.instance().clear()
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            getattr(__import__(module, fromlist=[func]), func)()
        except SystemExit as exit_:
            code = exit_.code or 0
        except BaseException as err:
            code, _ = 1, print(repr(err))
    results[script] = [code, out.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("help")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_RUNNER, json.dumps(SCRIPTS)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not os.listdir(cwd), f"--help wrote files: {os.listdir(cwd)}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_works_and_shows_the_docstring(helps, script):
    code, text = helps[script]
    assert code == 0, text[-2000:]
    assert f"``{script}``" in text.splitlines()[0], text[:500]  # the docstring's first line names it
    assert "Examples:" in text and "== Config ==" in text


def readme_commands() -> set[str]:
    """The ``embedlight-*`` names in the first column of the README's command table."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| command / switch |"))
    names: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        names |= set(re.findall(r"`(embedlight-[a-z-]+)\b", first))
    return names


def test_readme_command_table_matches_pyproject():
    listed = readme_commands()
    assert listed == set(SCRIPTS), (
        f"README table lacks {sorted(set(SCRIPTS) - listed)}, lists unknown {sorted(listed - set(SCRIPTS))}"
    )


def test_readme_table_parser_sees_a_difference(tmp_path):
    """The table check can fail: a command missing from the table is reported."""
    assert readme_commands() - {"embedlight-train"} != set(SCRIPTS)
