"""The layers of a `tools.pip` node: one per tool's venv laid on the host, and one of the
executables' links; or, when the lock does not let the host lay every venv, one layer of the
whole prefix made by pip in a container (`recipe.py`).

One layer per tool keeps a one-tool bump cheap: the other tools' layers are found in the
cache and keep their diff IDs (their registry blobs); the links layer (PIP_PREFIX/bin, a few
hundred bytes) sits on top and is the only other one made again. Each is kept in the cache
under a key of exactly what its bytes depend on (`sha256_of` of canonical JSON):

- a tool's venv: `{"recipe", "assembled": "host", "pip": the tool's name, "closure": its
  packages (name, version, sha256, wheel file name), "python": the interpreter (`python3` on
  PATH, its real path, X.Y.Z, all three written into pyvenv.cfg and bin/python3's link),
  "magic": the bytecode magic number its .pyc files carry (compiled in a fresh interpreter,
  their bytes are the minor version's: `venv._compile`), "platform", "epoch"}`. The wheel
  file names carry the tags that decided which file pip chose; the platform decides `lib64`.
  Nothing else of the image lands in the bytes (no code ran in it, no compiler), so the stage
  is not hashed: a new system layer (a Debian point release of anything but python3.X, a new
  git) finds every venv in the cache.
- the links: `{"recipe", "assembled": "host", "links": tool -> its executables, "epoch"}`.

The node's own key (which the executor looks up first) still holds its parents' keys, as
every node's does; only these per-tool keys decide what is made again.

Reusing a venv on a new system layer does not go unchecked: `sandbox check` runs every
executable each tool links (`--version`, in a login shell as uid 12345) in the new image,
through the venv's `bin/python3` -> /usr/bin/python3 link, so a python3 that lost a library a
tool needs, or moved, fails the check.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from builder.core import space
from builder.core.errors import BuildError
from builder.core.keys import sha256_of
from builder.engine.step import StepContext
from builder.kinds.kind import StepResult
from builder.kinds.layer import PIP_RECIPE, TOOLS_RECIPE, store, verify_installed
from builder.kinds.pip import python as pythons
from builder.kinds.pip.recipe import PIP_PREFIX, build_in_container
from builder.kinds.pip.venv import lay_venv, normalize, normalize_modes
from builder.kinds.pip.wheels import Wheel, fetch_all, refusal, wheels_of
from builder.model.lockfile import NodeLock
from builder.model.toolinputs import ImagePython, PipTool, PipToolsInputs
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile, tar_directory

_ARCH64 = ("linux/amd64", "linux/arm64")


def in_container(node: NodeLock) -> dict[str, str]:
    """The tools the lock says cannot be laid on the host, with why; every tool of the node
    when any one cannot (the container recipe makes the whole prefix, links and all)."""
    inputs = node.inputs_as(PipToolsInputs)
    why = _node_refusal(inputs)
    found = {}
    for tool, locked in sorted(inputs.tools.items()):
        reason = why or refusal(tool, locked.packages)
        if reason is not None:
            found[tool] = reason
    if found and len(found) < len(inputs.tools):
        first = next(iter(found))
        for tool in inputs.tools:
            found.setdefault(tool, f"{first} is (the links of all tools are made together)")
    return found


def _node_refusal(inputs: PipToolsInputs) -> str | None:
    if inputs.interpreter is None:
        return (
            "the lock does not say which python3 the image runs (a runtime.python node, or "
            "a lock made before it was recorded: `sandbox lock --update tools.pip`)"
        )
    return pythons.compile_refusal(inputs.interpreter)


def tool_key(ctx: StepContext, tool: str, locked: PipTool, python: ImagePython) -> str:
    """The cache key of a host-laid tool's venv layer (the module's docstring says why)."""
    return sha256_of(
        {
            "recipe": PIP_RECIPE,
            "assembled": "host",
            "pip": tool,
            "closure": [
                {
                    "name": w.pin.name,
                    "version": w.pin.version,
                    "sha256": w.pin.sha256,
                    "wheel": w.filename,
                }
                for w in wheels_of(locked.packages)
            ],
            "python": {
                "command": python.command,
                "executable": python.executable,
                "version": python.version,
            },
            "magic": pythons.magic_of(python),
            "platform": ctx.platform,
            "epoch": ctx.epoch,
        }
    )


def links_key(ctx: StepContext, links: Mapping[str, tuple[str, ...]]) -> str:
    """The cache key of the links layer: which tool links which executables."""
    return sha256_of(
        {
            "recipe": TOOLS_RECIPE,
            "assembled": "host",
            "links": {tool: list(exes) for tool, exes in sorted(links.items())},
            "epoch": ctx.epoch,
        }
    )


def build_pip_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    """Each tool's venv laid on the host (or found in the cache), then the links layer; the
    whole prefix in a container when `in_container` says so."""
    say: Callable[[str], None] = ctx.say or (lambda _text: None)
    refused = in_container(node)
    if refused:
        for tool, reason in sorted(refused.items()):
            say(f"  {node.name}: {tool} in a container: {reason}")
        return build_in_container(ctx, node)
    inputs = node.inputs_as(PipToolsInputs)
    python = inputs.interpreter
    assert python is not None  # in_container refuses a lock without it
    layers: list[LayerFile] = []
    links: dict[str, tuple[str, ...]] = {}
    for tool, locked in sorted(inputs.tools.items()):
        key = tool_key(ctx, tool, locked, python)
        entry = ctx.cache.entry(key)
        if entry is None:
            layer, exes = _lay(ctx, node, tool, locked, python, key)
            say(f"  {node.name}: {tool} assembled on the host")
        else:
            layer, exes = _from_cache(ctx, entry)
            say(f"  {node.name}: {tool} cached (assembled on the host)")
        layers.append(layer)
        links[tool] = exes
    layers.append(_links_layer(ctx, node, links))
    return StepResult(layers=layers, env={"PATH": f"{PIP_PREFIX}/bin"})


def _from_cache(ctx: StepContext, entry: NodeEntry) -> tuple[LayerFile, tuple[str, ...]]:
    (la,) = entry.layers
    layer = LayerFile(diff_id=la.diff_id, path=ctx.cache.layer_path(la.diff_id), size=la.size)
    return layer, tuple(str(exe) for exe in entry.env.get("EXECUTABLES", "").split())


TREES = space.TREE_SETTING  # where venvs are laid: in memory, or SANDBOX_TREE_DIR


def _lay(
    ctx: StepContext, node: NodeLock, tool: str, locked: PipTool, python: ImagePython, key: str
) -> tuple[LayerFile, tuple[str, ...]]:
    """The tool's venv laid in scratch, checked against the lock, packed and cached; the
    executables it links are kept with the cache entry (its env), so a cached venv needs no
    unpacking to link them."""
    wheels = wheels_of(locked.packages)
    files = fetch_all(wheels, ctx.cache.downloads / "wheels")
    root = ctx.cache.tree_scratch(f"{node.name}-{tool}-")
    out = ctx.cache.scratch(f"{node.name}-{tool}-layer-")
    try:
        named = _named(out / "wheels", wheels, files)
        venv = f"{PIP_PREFIX}/{tool}"
        with space.room_for(root, what=f"tools.pip: laying {tool}'s venv", setting=TREES):
            laid = lay_venv(
                root=root,
                venv=venv,
                tool=tool,
                python=python,
                wheels=named,
                arch64=ctx.platform in _ARCH64,
            )
        pins = {normalize(p.name): p.version for p in locked.packages}
        verify_installed(laid.installed, pins, node=f"tools.pip ({tool})")
        normalize_modes(root)
        packed = tar_directory(root, out / "layer.tar", epoch=ctx.epoch, only=venv.strip("/"))
        layer = store(ctx.cache, packed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    piece = Layer(diff_id=layer.diff_id, size=layer.size)
    env = {"EXECUTABLES": " ".join(laid.executables)}
    ctx.cache.put(NodeEntry(name=f"{node.name}/{tool}", key=key, layers=(piece,), env=env))
    return layer, laid.executables


def _named(folder: Path, wheels: list[Wheel], files: list[Path]) -> list[Path]:
    """Links named as the wheels are (installer reads name, version and tags from the file
    name) to the downloaded files, which the cache names by sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    named = []
    for wheel, file in zip(wheels, files, strict=True):
        link = folder / wheel.filename
        link.symlink_to(file.resolve())
        named.append(link)
    return named


def _links_layer(
    ctx: StepContext, node: NodeLock, links: Mapping[str, tuple[str, ...]]
) -> LayerFile:
    """PIP_PREFIX/bin/<exe> -> ../<tool>/bin/<exe> for each tool's executables, as the
    container recipe links them; two tools linking one name is an error."""
    key = links_key(ctx, links)
    entry = ctx.cache.entry(key)
    if entry is not None:
        return _from_cache(ctx, entry)[0]
    owner: dict[str, str] = {}
    for tool, exes in sorted(links.items()):
        for exe in exes:
            if exe in owner:
                msg = (
                    f"tools.pip: {exe} is provided by two pip tools ({owner[exe]} and {tool}); "
                    "drop one of them from [tools].pip in sandbox.toml"
                )
                raise BuildError(msg)
            owner[exe] = tool
    root = ctx.cache.tree_scratch(f"{node.name}-bin-")
    out = ctx.cache.scratch(f"{node.name}-bin-layer-")
    try:
        folder = root / PIP_PREFIX.strip("/") / "bin"
        with space.room_for(root, what="tools.pip: linking the executables", setting=TREES):
            folder.mkdir(parents=True)
            for exe, tool in sorted(owner.items()):
                (folder / exe).symlink_to(f"../{tool}/bin/{exe}")
        normalize_modes(root)
        only = f"{PIP_PREFIX}/bin".strip("/")
        packed = tar_directory(root, out / "layer.tar", epoch=ctx.epoch, only=only)
        layer = store(ctx.cache, packed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    piece = Layer(diff_id=layer.diff_id, size=layer.size)
    ctx.cache.put(NodeEntry(name=f"{node.name}/bin", key=key, layers=(piece,)))
    return layer
