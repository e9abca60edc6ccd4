"""The house: the packages of ``analyzer/`` are the stages of the pipeline, imports point one way, there is
no circle between modules, and no module outgrows its room (issue 15).

Every ``import``/``from ... import`` of ``analyzer`` in every module counts, including those inside
functions and behind ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "analyzer"

#: The stages, bottom up: a module may import its own stage and the ones before it, never a later one.
STAGES = ("base", "capture", "transport", "messages", "engines", "meaning", "rules", "report", "run", "cli")
#: Side tools: what each may import (synth writes captures with the capture writer; it reads nothing of the
#: pipeline above transport).
#: The CLI, on top, may use them.
SIDE = {"synth": ("base", "capture", "transport")}
#: Modules of the package itself, outside the stages: ``python -m analyzer``.
ENTRY = ("analyzer.__main__",)
#: Modules allowed over ~400 lines, with the reason.
BIG = {}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str, importer: str, is_package: bool, level: int) -> str:
    if level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (level - 1)]
        name = ".".join([*base, name] if name else base)
    return name


def _imports(module: str) -> set[str]:
    """The analyzer modules ``module`` imports (a ``from pkg import sub`` names the submodule)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", module, is_package, node.level)
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("analyzer.") and name != module:
                out.add(name)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (parts[1] in STAGES or parts[1] in SIDE) else None


def test_every_module_sits_in_a_stage_package():
    loose = sorted(m for m in MODULES if m.count(".") >= 1 and _stage(m) is None and m not in ENTRY)
    assert loose == [], "modules outside the stage packages: " + ", ".join(loose)


def test_imports_point_down_the_pipeline():
    upward = []
    for module, targets in GRAPH.items():
        stage = _stage(module)
        if stage is None:
            continue
        allowed = SIDE.get(stage, STAGES[: STAGES.index(stage) + 1] if stage in STAGES else ())
        allowed = (*allowed, stage, *(SIDE if stage == "cli" else ()))
        upward += [f"{module} -> {t}" for t in sorted(targets) if _stage(t) not in allowed]
    assert upward == [], "imports against the pipeline:\n" + "\n".join(upward)


def test_no_circle_between_modules():
    """Tarjan's strongly connected components over the module graph: each must be a single module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(" <-> ".join(sorted(component)))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert circles == [], "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_outgrows_its_room(module):
    path = MODULES[module]
    if "examples" in path.parts:
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES or module in BIG, f"{module} has {lines} lines: split it along its seams"


def test_every_package_says_what_it_owns_and_may_import():
    for module, path in MODULES.items():
        if path.name == "__init__.py" and module != "analyzer":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            assert doc and len(doc) > 40, f"{module} has no docstring saying what it owns"


def test_the_checks_can_fail():
    """The graph is read right: known edges exist (a check that sees no import passes for nothing)."""
    assert "analyzer.base.errors" in GRAPH["analyzer.capture"]
    assert any(t.startswith("analyzer.meaning") for t in GRAPH["analyzer.rules.matcher"])
