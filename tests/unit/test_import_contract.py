"""The import contract: `builder/` is a stack of stage packages, and imports only go down it.

PIPELINE lists the packages bottom first. A module may import its own package and any package
listed before it, never one after: `lock` may use `model` and `engine`, `realize` may use
`lock`'s resolvers, but nothing below `cli` knows the CLI exists. Every import counts:
module-level, inside functions (the lazy imports of the no-op path) and under TYPE_CHECKING.
Nor does any module of builder/ or bench/ import itself round a ring of others.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import networkx as nx
import pytest

import builder
from builder.kinds import KINDS

ROOT = Path(builder.__file__).parent

PIPELINE = [
    "core",  # the shared base: errors, atomic writes, keys, layout, limits, progress ...
    "store",  # the content-addressed cache: layers, node entries, registry blobs
    "net",  # HTTP from the host: one transport, downloads, the registry client
    "engine",  # where steps run: the engine interface, endpoint, a step in a container
    "model",  # sandbox.toml and sandbox.lock: the spec, the layer graph, the lock model
    "resolve",  # the resolvers: apt, base images, runtimes, pip/npm closures, deps, binaries
    "kinds",  # the node kinds: each one's table, edges, lock, build, pins and probes
    "lock",  # `sandbox lock` and `sandbox outdated`: the resolvers driven over the graph
    "image",  # images from layers: assemble, load, export, the no-op replay
    "realize",  # plan, execute, recipes, the stages lock is handed
    "publish",  # the registry: the image, the team cache, the OCI index
    "orchestrator",  # the overlay and applying it to Risoluto
    "check",  # `sandbox check`
    "sbom",  # `sandbox sbom`
    "actions",  # what each command does, typer-free
    "cli",  # the `sandbox` command
]
RANK = {name: rank for rank, name in enumerate(PIPELINE)}


def _package_of(module: str) -> str | None:
    """`builder.resolve.apt` -> `lock`; the root package (`builder`) -> None (a base)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every `builder...` import in the file, whatever its position."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "builder":
                for alias in node.names:
                    yield node.lineno, f"builder.{alias.name}"
            elif node.module.startswith("builder."):
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("builder."):
                    yield node.lineno, alias.name


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_module_lives_in_a_stage_package() -> None:
    """`ls builder/` is the pipeline: no module beside the packages but the entry points."""
    loose = sorted(
        p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())
    assert loose == []
    assert packages == sorted(PIPELINE)


@pytest.mark.parametrize("name", PIPELINE)
def test_every_package_says_what_it_takes_and_gives(name: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / name / "__init__.py").read_text()))
    assert doc, f"builder/{name}/__init__.py has no docstring"


def test_imports_go_down_the_pipeline() -> None:
    climbs = []
    for path in MODULES:
        source = _package_of(_module_name(path))
        if source is None:  # builder/__init__.py, builder/__main__.py: the top
            continue
        for line, module in _imports(path):
            target = _package_of(module)
            if target is not None and RANK[target] > RANK[source]:
                where = path.relative_to(ROOT.parent)
                climbs.append(f"{where}:{line}: {source} imports {module} ({target} is above)")
    assert climbs == [], "imports that climb the pipeline:\n" + "\n".join(climbs)


def test_the_contract_sees_a_climb(tmp_path: Path) -> None:
    """The checker itself: an upward import in a module is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from builder.cli.app import app\n")
    assert list(_imports(bad)) == [(2, "builder.cli.app")]
    assert RANK["cli"] > RANK["core"]


def _import_graph(top: Path, packages: Iterable[str]) -> nx.DiGraph:
    """Module -> each module of `packages` (folders under `top`) it imports, every import
    counted as `_imports` counts it. `from a.b import c` is an edge to module `a.b.c` when
    there is one, else to `a.b`; an edge goes to that module only, not to the packages above
    it (whose `__init__` runs first, but a package importing its own modules is how it
    re-exports them)."""
    modules = {
        ".".join(parts[:-1] if parts[-1] == "__init__" else parts): path
        for name in packages
        for path in sorted((top / name).rglob("*.py"))
        for parts in [path.relative_to(top).with_suffix("").parts]
    }
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [m if m in modules else node.module for m in named]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph.add_edges_from((module, t) for t in targets if t in modules and t != module)
    return graph


def _cycles(graph: nx.DiGraph) -> list[str]:
    """One ring of imports (`a -> b -> a`) for each set of modules that import each other."""
    rings = []
    for group in nx.strongly_connected_components(graph):
        if len(group) > 1:
            edges = nx.find_cycle(graph.subgraph(group))
            rings.append(" -> ".join([*(a for a, _ in edges), edges[0][0]]))
    return sorted(rings)


def test_no_module_imports_itself_round_a_ring() -> None:
    """No import cycle among the modules of builder/ and bench/: a ring means two modules
    that are one job, or a shared piece living in the wrong one (move it where both import
    it from)."""
    rings = _cycles(_import_graph(ROOT.parent, ["builder", "bench"]))
    assert rings == [], "modules importing each other:\n" + "\n".join(rings)


def test_the_contract_sees_a_ring(tmp_path: Path) -> None:
    """The checker itself: a ring closed by an import in a function, or under TYPE_CHECKING,
    is found; the same imports without the ring are not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import g\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
    )
    assert _cycles(_import_graph(tmp_path, ["pkg"])) == ["pkg.a -> pkg.b -> pkg.c -> pkg.a"]
    (pkg / "c.py").write_text("import pkg\n")
    assert _cycles(_import_graph(tmp_path, ["pkg"])) == []


# -- node kinds are named in their own modules only -----------------------------------------

KIND_NAMES = {kind.name for kind in KINDS}
KINDS_PACKAGE = ROOT / "kinds"
_NAMED_BY = {"startswith", "endswith", "removeprefix", "removesuffix", "get", "pop"}


def _names_a_kind(node: ast.AST) -> bool:
    """Whether `node` is a string naming a kind's node(s): "tools.pip", "runtime.node",
    f"deps.{name}", "tools.npm tsc" (a check named after a node) ..., or a tuple/set of them."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_kind(item) for item in node.elts)
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        return isinstance(first, ast.Constant) and _names_a_kind(first)
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return False
    text = node.value
    return text in KIND_NAMES or any(text.startswith((f"{k}.", f"{k} ")) for k in KIND_NAMES)


def _keys_by_a_node(key: ast.AST | None) -> bool:
    """A dict key naming a node ("tools.npm": ...); a one-word name ("runtime": ...) is also
    a field of a node's inputs, so only dotted names count here."""
    return isinstance(key, ast.Constant) and "." in str(key.value) and _names_a_kind(key)


def _dispatches(path: Path) -> Iterator[tuple[int, str]]:
    """(line, what) of each place `path` tells kinds apart by name: a kind's name compared,
    looked up (`nodes["base"]`, `.get("tools.npm")`), matched (`.startswith("deps.")`) or used
    as a dict key, or `NodeKind.X` compared."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_a_kind(o) for o in operands):
                yield node.lineno, "compares a kind's name"
            if any(
                isinstance(o, ast.Attribute) and ast.unparse(o.value) == "NodeKind"
                for o in operands
            ):
                yield node.lineno, "compares a NodeKind"
        elif isinstance(node, ast.Subscript) and _names_a_kind(node.slice):
            yield node.lineno, "looks a node up by its kind's name"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _NAMED_BY
            and any(_names_a_kind(a) for a in node.args)
        ):
            yield node.lineno, f"{node.func.attr}() of a kind's name"
        elif isinstance(node, ast.Dict) and any(_keys_by_a_node(k) for k in node.keys):
            yield node.lineno, "keys a dict by a kind's name"


def test_no_module_outside_the_kinds_names_a_kind() -> None:
    """A new kind is one module: nothing outside builder/kinds/ tells kinds apart by name."""
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}: {what}"
        for path in sorted(ROOT.rglob("*.py"))
        if not path.is_relative_to(KINDS_PACKAGE)
        for line, what in _dispatches(path)
    ]
    assert found == [], "kinds dispatched by name outside builder/kinds/:\n" + "\n".join(found)


def test_the_contract_sees_a_kind_named_by_string(tmp_path: Path) -> None:
    """The checker itself: each way of naming a kind is found, a mere message is not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(node, nodes, name):\n"
        '    if node.name == "tools.pip":\n'
        "        return 1\n"
        '    if name.startswith("tools.bin."):\n'
        "        return 2\n"
        '    base = nodes["base"]\n'
        '    npm = nodes.get(f"runtime.{name}")\n'
        "    if node.kind is NodeKind.DEPS:\n"
        "        return 3\n"
        '    return {"tools.npm": 4}, f"tools.pip: {name} failed", print("base")\n'
    )
    assert [line for line, _ in _dispatches(bad)] == [2, 4, 6, 7, 8, 10]
