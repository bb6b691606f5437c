"""The layers of the code base, checked on the import statements of every module (parsed, not imported).

* ``pipeline``'s base modules (:data:`BASE`: types, errors, config and the leaf
  helpers they need) import nothing else of the project: everything builds on them;
* ``reid/`` and ``trackers/`` import only those base modules of ``pipeline/``;
* per-camera trackers (``trackers/*.py``) never import cross-camera linking
  (``trackers/linking/``), and linking never imports per-camera trackers;
* nothing imports ``scripts/``;
* no function body in ``pipeline/``, ``trackers/`` or ``reid/`` is longer than
  :data:`MAX_BODY_LINES` lines (so each can be read at once).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGES = ("pipeline", "reid", "trackers")
BASE = frozenset({"pipeline.types", "pipeline.errors", "pipeline.config", "pipeline.onnx_session",
                  "pipeline.devices", "pipeline.atomic", "pipeline.redact", "pipeline.vectors", "pipeline.clock"})
MAX_BODY_LINES = 80


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Project modules imported by ``path`` (any depth: module level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] in (*PACKAGES, "scripts")}


def _sources() -> dict[str, Path]:
    return {_module(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _violations(rule: str) -> list[str]:
    out = []
    sources = _sources()
    for mod, path in sources.items():
        for imp in sorted(_imports(path)):
            target = imp if imp in sources else imp.rsplit(".", 1)[0]  # "from a.b import name"
            if target not in sources and not imp.startswith("scripts"):
                continue
            if _breaks(rule, mod, target):
                out.append(f"{mod} imports {target}")
    return out


def _breaks(rule: str, mod: str, target: str) -> bool:
    top = mod.split(".")[0]
    if rule == "base":
        return mod in BASE and target not in BASE
    if rule == "reid_trackers":
        return top in ("reid", "trackers") and target.startswith("pipeline") and target not in BASE
    if rule == "trackers_vs_linking":
        in_linking = mod.startswith("trackers.linking")
        return top == "trackers" and target.startswith("trackers") and target != "trackers" and (
            in_linking != target.startswith("trackers.linking"))
    if rule == "scripts":
        return target.startswith("scripts")
    raise ValueError(rule)


@pytest.mark.parametrize("rule", ["base", "reid_trackers", "trackers_vs_linking", "scripts"])
def test_layers(rule: str) -> None:
    assert _violations(rule) == []


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    # the checker itself: a deliberate upward import must be reported
    assert _breaks("reid_trackers", "reid.train", "pipeline.runner")
    assert _breaks("base", "pipeline.config", "trackers.linking.topology")
    assert _breaks("trackers_vs_linking", "trackers.byte_tracker", "trackers.linking.offline")
    assert _breaks("trackers_vs_linking", "trackers.linking.offline", "trackers.matching")
    assert not _breaks("reid_trackers", "trackers.byte_tracker", "pipeline.config")
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from pipeline.runner import run\n    import scripts.make_multicam\n")
    assert _imports(bad) == {"pipeline.runner", "pipeline.runner.run", "scripts.make_multicam"}


def _long_functions() -> list[str]:
    out = []
    for mod, path in _sources().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                if body:
                    n = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
                    if n > MAX_BODY_LINES:
                        out.append(f"{mod}.{node.name}: {n} lines")
    return out


def test_function_bodies_fit_on_a_screen() -> None:
    assert _long_functions() == []
