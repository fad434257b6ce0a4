"""The import structure of ``facelift_models/``: layers, no cycles, nothing reaching into ``tests``.

Every import statement is read from the source (function-level imports included, so a cycle hidden inside a
function still counts). The layer order, lowest first:

    base      errors, atomic_io, config, gaussians, cameras      shared vocabulary, one fact per place
    weights   weights/                                           registry, store, downloads, presence checks
    stages    face/, multiview/, reconstruct/, render/, formats/, mesh/   one sub-package per pipeline stage
    tools     convert, doctor, download (command alias), parity/, batch/  commands that use several stages

A module may import from its own layer and the layers below it, never from a layer above. Stage sub-packages are
siblings: one stage imports another only where ``STAGE_DEPENDS`` says so (with the reason). A new module or
sub-package must be entered in ``LAYER_OF`` (the test says so), which is where its place in the architecture is
decided (see docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = "facelift_models"

LAYERS = ("base", "weights", "stages", "tools")
LAYER_OF = {
    # top-level modules and sub-packages of facelift_models -> layer
    "__init__": "base", "errors": "base", "atomic_io": "base", "config": "base", "gaussians": "base",
    "cameras": "base", "chunking": "base",
    "weights": "weights",
    "face": "stages", "multiview": "stages", "reconstruct": "stages", "render": "stages", "formats": "stages",
    "mesh": "stages",
    "convert": "tools", "doctor": "tools", "download": "tools", "parity": "tools", "batch": "tools",
}
# Allowed imports between sibling stages: {importer: {imported: reason}}. Otherwise the stages meet only in tools
# and in the ComfyUI nodes.
STAGE_DEPENDS: dict[str, dict[str, str]] = {
    "mesh": {"render": "colour_source='views' colours the mesh from renders of the Gaussians; the numba splatting "
                       "kernel uses render's on-disk numba kernel cache",
             "formats": "it returns formats.mesh.ColoredMesh, the value the mesh writers and readers exchange"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _sources(root: Path) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = _sources(REPO / PKG)


def _imports(path: Path, modname: str) -> list[tuple[str, int]]:
    """Absolute names of everything ``path`` imports (modules, or ``module.attribute``), with line numbers."""
    package = modname if _is_package(path) else modname.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
            out.append((mod, node.lineno))
    return out


def _internal_target(name: str) -> str | None:
    """The facelift_models module an imported name lands in (the longest known module prefix), or None."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


def _graph() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = {}
    for mod, path in MODULES.items():
        edges: dict[str, int] = {}
        for name, line in _imports(path, mod):
            target = _internal_target(name)
            if target is not None and target != mod and target != PKG:
                edges.setdefault(target, line)
        graph[mod] = edges
    return graph


def _unit(mod: str) -> str:
    """The entry of LAYER_OF a module belongs to: its top-level module or sub-package."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    unknown = sorted({_unit(m) for m in MODULES} - set(LAYER_OF))
    assert not unknown, (f"facelift_models/{unknown} is in no layer: add it to LAYER_OF in {Path(__file__).name} "
                         "(and to docs/architecture.md)")


def test_lower_layers_never_import_upper_ones():
    bad = []
    for mod, edges in _graph().items():
        src = _unit(mod)
        for target, line in edges.items():
            dst = _unit(target)
            if src == dst:
                continue
            ls, ld = LAYERS.index(LAYER_OF[src]), LAYERS.index(LAYER_OF[dst])
            if ld > ls:
                bad.append(f"{MODULES[mod].relative_to(REPO)}:{line} ({LAYER_OF[src]}) imports {target} "
                           f"({LAYER_OF[dst]})")
            elif ld == ls and LAYER_OF[src] == "stages" and dst not in STAGE_DEPENDS.get(src, {}):
                bad.append(f"{MODULES[mod].relative_to(REPO)}:{line}: stage {src} imports stage {dst} "
                           "(not in STAGE_DEPENDS)")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_detector_sees_function_level_imports(tmp_path):
    """The parser must see an import inside a function (that is where cycles used to hide)."""
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from .view_embeddings import get_view_embeddings\n")
    names = [n for n, _ in _imports(p, f"{PKG}.multiview.m")]
    assert f"{PKG}.multiview.view_embeddings" in names


SHIPPED_AND_TOOLING = ("facelift_models", "nodes", "scripts", "benchmarks", "harness")


@pytest.mark.parametrize("folder", SHIPPED_AND_TOOLING)
def test_nothing_outside_tests_imports_tests(folder):
    bad = []
    for mod, path in _sources(REPO / folder).items():
        for name, line in _imports(path, mod):
            if name == "tests" or name.startswith("tests."):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_model_code_imports_no_host_or_tooling():
    """facelift_models is usable without ComfyUI, the nodes or the dev harness."""
    forbidden = ("nodes", "harness", "comfy", "comfy_api", "folder_paths", "server")
    bad = []
    for mod, path in MODULES.items():
        for name, line in _imports(path, mod):
            if name.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("command", ["download", "convert", "doctor", "parity"])
def test_commands_keep_their_names(command):
    """``python -m facelift_models.<command>`` survives the re-layering (download is a thin alias)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", f"facelift_models.{command}", "--help"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and f"python -m facelift_models.{command}" in p.stdout, p.stdout + p.stderr
