"""Layout checks. Test modules are imported by basename (pytest's default import mode): two with one name break
collection. jpcurate's modules form no import cycle, import no private name of another module, and import at the
top (function-level imports only for optional dependencies and in the CLI, whose start-up stays light)."""

import ast
from collections import Counter
from functools import lru_cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py" and "__pycache__" not in p.parts)
    assert [n for n, c in names.items() if c > 1] == []


# ---- jpcurate's inside: no import cycles, no private names across modules, imports at the top -------------------

PKG = TESTS.parent / "src" / "jpcurate"
# Imports inside a function body that are allowed, with the reason. Everything else imports at the top.
OPTIONAL = {"ray", "fugashi", "unidic_lite", "unidic", "matplotlib", "zstandard", "datasketch"}  # optional extras
START_UP = "jpcurate.cli"  # the CLI imports every command module at start: heavy engines load when a command runs
LAZY = {("jpcurate.io.readers", "pyarrow.parquet"), ("jpcurate.io.writers", "pyarrow.parquet"),
        ("jpcurate.io.writers", "pyarrow")}  # a JSONL run never loads pyarrow (~50 ms of every start)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=1)
def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PKG.rglob("*.py"))
            if "__pycache__" not in p.parts}


def _resolve(name: str, mods: dict) -> str | None:
    """The jpcurate module an import names (`jpcurate.steps.base`; `from jpcurate.text import features` names
    `jpcurate.text.features` when that is a module)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(tree: ast.Module, mods: dict) -> list[tuple[str, ast.AST, bool]]:
    """(imported jpcurate module, node, at module level) for every import of a jpcurate module."""
    top = {id(n) for n in tree.body} | {id(n) for s in tree.body if isinstance(s, ast.If | ast.Try)
                                        for n in ast.walk(s)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                     for a in node.names]
        for n in names:
            if n.split(".")[0] == "jpcurate" and (m := _resolve(n, mods)):
                out.append((m, node, id(node) in top))
    return out


def test_no_import_cycles_among_module_level_imports():
    mods = _modules()
    graph = {m: {dep for dep, _, top in _imports(t, mods) if top and dep != m and not m.startswith(dep + ".")
                 and dep != "jpcurate"} for m, t in mods.items()}
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_function_level_import_cycles_either():
    """A function-level import that closes a circle is still a circle (the two that existed went this way)."""
    mods = _modules()
    graph = {m: {dep for dep, _, _ in _imports(t, mods) if dep != m and dep != "jpcurate"
                 and not m.startswith(dep + ".")} for m, t in mods.items()}

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            if x not in seen:
                seen.add(x)
                todo += graph.get(x, ())
        return False

    pairs = sorted((m, d) for m, deps in graph.items() for d in deps if reaches(d, m))
    assert pairs == []


def test_no_private_names_imported_across_modules():
    bad = []
    for m, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jpcurate"):
                bad += [f"{m}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in _imported_module_names(tree):
                bad.append(f"{m}: {node.value.id}.{node.attr}")
    assert bad == []


def _imported_module_names(tree: ast.Module) -> set[str]:
    """Local names bound to jpcurate modules (`from jpcurate.dedup import phases` binds `phases`)."""
    mods = _modules()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jpcurate"):
            out |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in mods}
    return out


def test_imports_at_the_top_unless_optional_or_cli():
    late = []
    for m, tree in _modules().items():
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in top:
                continue
            if any(id(node) in {id(n) for n in ast.walk(s)} for s in tree.body if isinstance(s, ast.If | ast.Try)):
                continue  # a module-level try/if (TYPE_CHECKING, a fallback)
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if all(n.split(".")[0] in OPTIONAL or (m, n) in LAZY for n in names) or m.startswith(START_UP):
                continue
            late.append(f"{m}: {', '.join(names)}")
    assert late == []


def test_layout_folders_hold_their_concepts():
    """Every filter/cleaner step class lives in jpcurate.steps; presets, engines, I/O, CLI have their folders."""
    import inspect

    from jpcurate.pipeline import Step
    from jpcurate.presets import PRESETS, build_preset

    for name in PRESETS:
        for step in build_preset(name):
            assert type(step).__module__.startswith("jpcurate.steps."), (name, type(step))
    for folder in ("io", "steps", "presets", "engines", "dedup", "lm", "cli", "text"):
        assert (PKG / folder / "__init__.py").is_file(), folder
    assert inspect.isclass(Step)


def test_public_names_stable_and_resolved_lazily():
    """`jpcurate`'s public names are those it always had; they resolve on first use, so the command line can hold
    numpy's BLAS to one thread before numpy loads (a subprocess: this one has numpy already)."""
    import subprocess
    import sys

    import jpcurate

    assert sorted(jpcurate.__all__) == sorted(["PRESETS", "Document", "Malformed", "Pipeline", "RunOptions",
                                               "ShardWriter", "Stats", "Step", "__version__", "build_preset",
                                               "read_documents", "run_local", "run_pipeline", "script_ratios"])
    assert all(getattr(jpcurate, n) is not None for n in jpcurate.__all__)
    code = "import sys, jpcurate.cli; print('numpy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONPATH": str(PKG.parent)})
    assert r.stdout.strip() == "False"
