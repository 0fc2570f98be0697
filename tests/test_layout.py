"""The package's shape: stages import only what lies below them, no import circles, short files, a light client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "opensearch_kit"
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports at run time, at any depth (function-level imports count too; imports
    for type checkers only do not)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out |= {n for n in names if n in known}
    return out


def test_no_import_circles():
    found = modules()
    graph = {name: imports_of(path, set(found)) - {name} for name, path in found.items()}
    # a package's __init__ re-exports its modules: importing the package means importing what it re-exports
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(dep) :], dep]))
            if dep not in state:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_source_file_over_the_limit():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_every_subpackage_names_its_public_entry_points():
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), init
        exported = [n for n in tree.body if isinstance(n, ast.Assign) and any(t.id == "__all__" for t in n.targets)]
        defines = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert exported or defines or init.parent.name == "cli", f"{init} names no entry point"


def test_the_search_client_imports_no_torch():
    """Searching, indexing, ingesting, deploying and checking an export need neither torch nor transformers."""
    code = (
        "import sys\n"
        "import opensearch_kit.cli, opensearch_kit.search, opensearch_kit.index, opensearch_kit.ingest\n"
        "import opensearch_kit.deploy, opensearch_kit.verify, opensearch_kit.runtime, opensearch_kit.evaluate\n"
        "import opensearch_kit.export, opensearch_kit.demo, opensearch_kit.models, opensearch_kit.serve\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'onnx', 'ray') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported {out}"


# Lowest first: a module may import modules of its own layer or of the layers before it.
LAYERS = [
    {"opensearch_kit", "errors", "files", "progress", "beir", "datasets", "wheel_models", "artifact"},
    {"cluster"},
    {"opensearch"},
    {"runtime"},
    {"serve"},
    {"verify"},
    {"export"},
    {"index"},
    {"ingest"},
    {"search"},
    {"evaluate"},
    {"tune"},
    {"models", "deploy", "remote"},
    {"demo"},
    {"cli"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_each_stage_imports_only_stages_below_it():
    found = modules()
    upward = [
        f"{name} -> {dep}"
        for name, path in found.items()
        for dep in imports_of(path, set(found))
        if dep != "opensearch_kit" and layer_of(dep) > layer_of(name)
    ]
    assert not upward, upward
