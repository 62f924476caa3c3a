"""The import layering of ARCHITECTURE.md: no module imports from a layer above its own, and the
packages' import graph has no cycle. Read from the source (``ast``), so an import inside a function
counts as much as one at the top of a file."""

from __future__ import annotations

import ast
import pathlib

import pytest

import embedlight

ROOT = pathlib.Path(embedlight.__file__).parent

# lowest first; a module may import from its own layer and the layers below it (ARCHITECTURE.md)
LAYERS: list[tuple[str, ...]] = [
    ("utils", "registry"),
    ("prompts",),
    ("data",),
    ("backbones", "poolers", "losses"),
    ("models",),
    ("evaluation",),
    ("engine",),
    ("modules",),
    ("callbacks", "strategies"),
    ("training",),
    ("cli", "conf", "testing"),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """``embedlight.data.icl`` -> ``data``; the package itself (``embedlight``) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``embedlight`` import in a file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("embedlight")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod == "embedlight":  # ``from embedlight import x``: x is a unit
                found += [(node.lineno, f"embedlight.{a.name}") for a in node.names]
            elif mod.startswith("embedlight."):
                found.append((node.lineno, mod))
    return found


def source_files() -> list[pathlib.Path]:
    return sorted(ROOT.rglob("*.py"))


def violations(files: list[pathlib.Path]) -> list[str]:
    out = []
    for path in files:
        unit = unit_of(module_name(path)) if module_name(path) != "embedlight" else "utils"
        if unit not in LAYER:
            out.append(f"{path.relative_to(ROOT.parent)}: package {unit!r} has no layer in ARCHITECTURE.md")
            continue
        for line, target in imports_of(path):
            other = unit_of(target)
            if other is None or other == unit:
                continue
            if other not in LAYER:
                out.append(f"{path.relative_to(ROOT.parent)}:{line}: imports {target}, which has no layer")
            elif LAYER[other] > LAYER[unit]:
                out.append(
                    f"{path.relative_to(ROOT.parent)}:{line}: {unit} (layer {LAYER[unit]}) imports "
                    f"{target} (layer {LAYER[other]}, above it)"
                )
    return out


def unit_graph(files: list[pathlib.Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in files:
        unit = unit_of(module_name(path)) or "utils"
        for _, target in imports_of(path):
            other = unit_of(target)
            if other and other != unit:
                graph.setdefault(unit, set()).add(other)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_from_a_layer_above_its_own():
    found = violations(source_files())
    assert not found, "imports that run back up:\n" + "\n".join(found)


def test_packages_import_no_cycle():
    assert find_cycle(unit_graph(source_files())) is None


def test_every_package_has_a_layer():
    units = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or p.is_dir()}
    units -= {"__init__", "__pycache__"}
    assert units <= set(LAYER), sorted(units - set(LAYER))


def test_the_check_sees_a_planted_back_import(tmp_path):
    """A data module importing from models (above it) is reported, with its file and line."""
    planted = ROOT / "data" / "_planted_back_import.py"
    planted.write_text('"""planted"""\n\nfrom embedlight.models.embedder import Embedder  # noqa: F401\n')
    try:
        found = violations([planted])
    finally:
        planted.unlink()
    assert found == [
        "embedlight/data/_planted_back_import.py:3: data (layer 2) imports embedlight.models.embedder "
        "(layer 4, above it)"
    ]


def test_the_cycle_check_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


@pytest.mark.parametrize("unit", sorted(LAYER))
def test_layer_table_names_real_packages(unit):
    assert (ROOT / unit).is_dir() or (ROOT / f"{unit}.py").is_file()
