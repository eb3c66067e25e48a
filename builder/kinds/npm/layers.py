"""The layers of a `tools.npm` node: one per tool, assembled on the host where npm runs no
code, else installed by `npm ci` in a container of node; each cached under its own key.

A tool's layer is its tree under NPM_PREFIX/<folder>. Each is kept in the cache under a key
of exactly what its bytes depend on (`sha256_of` of canonical JSON):

- assembled on the host (`tree.py`: every package of the closure a registry tarball with an
  integrity, none with install scripts, links, bundled packages or a binding.gyp):
  `{"recipe", "assembled": "host", "npm": the tool's spec, "closure": its package-lock
  entries, "platform", "epoch"}`. The bytes are the tarballs' files laid out at their lock
  paths: the platform decides which optional packages are left out, the lock's epoch is every
  mtime; nothing of the image below lands in them (no node ran, no script, no compiler), so
  the stage is not hashed and a node runtime bump (node 22 -> 24) finds every such layer in
  the cache.
- installed in a container (the tree needs code run): `{"recipe", "npm", "closure", "in": the
  stage image}`, the image of the node's parents stacked, which the scripts ran on: a new
  runtime (or system) rebuilds it.

Reusing a host-assembled layer on a new runtime does not go unchecked: `sandbox check` runs
each tool's executable (`--version`, as a stranger uid) in the new image, where its `#!/usr/bin/env
node` line finds the new node on PATH, so a tool that does not run on it fails the check.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from builder.core import space
from builder.core.errors import BuildError
from builder.core.keys import sha256_of
from builder.engine.step import StepContext
from builder.kinds.kind import StepResult
from builder.kinds.layer import TOOLS_RECIPE, store
from builder.kinds.npm.recipe import NPM_PREFIX, Todo, install_in_container
from builder.kinds.npm.tree import NotOnHost, Project, Target, assemble_npm_tree, refusal
from builder.model.lockfile import NodeLock
from builder.model.toolinputs import NpmToolsInputs
from builder.model.typed import write_inputs
from builder.resolve import managers
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile

Closure = list[Mapping[str, Any]]


def npm_folder(name: str) -> str:
    """The folder of npm tool `name` under NPM_PREFIX: `@openai/codex` -> `@openai+codex`."""
    return name.replace("/", "+")


def tool_closures(node: NodeLock) -> dict[str, tuple[str, Closure]]:
    """Each tool of the node by folder: its spec and its closure of the lock's packages."""
    inputs = node.inputs_as(NpmToolsInputs)
    packages = [write_inputs(p) for p in inputs.packages]
    if not packages:
        msg = "tools.npm: the lock holds no packages; run `sandbox lock --update tools.npm`"
        raise BuildError(msg)
    found = {}
    for spec in inputs.tools:
        name, _ = managers.npm_dependency(spec)
        found[npm_folder(name)] = (spec, managers.npm_closure(packages, name))
    return found


def in_container(node: NodeLock) -> dict[str, str]:
    """The tools the lock already says cannot be assembled on the host, by spec, with why."""
    found = {}
    for spec, closure in tool_closures(node).values():
        reason = refusal(closure)
        if reason is not None:
            found[spec] = reason
    return found


def host_key(ctx: StepContext, spec: str, closure: Sequence[Mapping[str, Any]]) -> str:
    """The cache key of a host-assembled tool's layer (the module's docstring says why)."""
    return sha256_of(
        {
            "recipe": TOOLS_RECIPE,
            "assembled": "host",
            "npm": spec,
            "closure": list(closure),
            "platform": ctx.platform,
            "epoch": ctx.epoch,
        }
    )


def build_npm_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    """One layer per npm tool, each its own tree under NPM_PREFIX/<tool>, bottom to top by
    folder; a tool found in the cache under its key is not made again, so bumping one tool
    makes (and uploads) only its layer."""
    say: Callable[[str], None] = ctx.say or (lambda _text: None)
    layers: dict[str, LayerFile] = {}
    todo: Todo = {}
    for folder, (spec, closure) in sorted(tool_closures(node).items()):
        reason = refusal(closure)
        if reason is None:
            key = host_key(ctx, spec, closure)
            found = _cached(ctx, key)
            if found is None:
                try:
                    found = _assemble(ctx, node, folder, spec, closure, key)
                    say(f"  {node.name}: {spec} assembled on the host")
                except NotOnHost as exc:
                    reason = exc.reason
            else:
                say(f"  {node.name}: {spec} cached (assembled on the host)")
            if found is not None:
                layers[folder] = found
                continue
        stage = ctx.stage(node.name)  # the image npm runs in: its parents stacked
        key = sha256_of({"recipe": TOOLS_RECIPE, "npm": spec, "closure": closure, "in": stage})
        found = _cached(ctx, key)
        if found is None:
            say(f"  {node.name}: {spec} in a container: {reason}")
            todo[folder] = (spec, closure, key)
        else:
            say(f"  {node.name}: {spec} cached (installed in a container: {reason})")
            layers[folder] = found
    if todo:
        layers.update(install_in_container(ctx, node, todo))
    folders = sorted(layers)
    path = ":".join(f"{NPM_PREFIX}/{f}/node_modules/.bin" for f in folders)
    return StepResult(layers=[layers[f] for f in folders], env={"PATH": path})


def _cached(ctx: StepContext, key: str) -> LayerFile | None:
    entry = ctx.cache.entry(key)
    if entry is None:
        return None
    (la,) = entry.layers
    return LayerFile(diff_id=la.diff_id, path=ctx.cache.layer_path(la.diff_id), size=la.size)


def _assemble(
    ctx: StepContext, node: NodeLock, folder: str, spec: str, closure: Closure, key: str
) -> LayerFile:
    """The tool's tree assembled on the host into a stored layer, cached under `key`."""
    work = ctx.cache.scratch(f"{node.name}-{folder}-")
    try:
        with space.room_for(work, what=f"{node.name}: assembling {spec}"):
            layer = assemble_npm_tree(
                project=Project.of_tools([spec], closure),
                packages=closure,
                folder=f"{NPM_PREFIX}/{folder}/",
                target=Target.of(ctx.platform),
                cacache=ctx.cache.downloads / "npm" / "_cacache",
                epoch=ctx.epoch,
                dest=work / "layer.tar",
            )
        stored = store(ctx.cache, layer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    piece = Layer(diff_id=stored.diff_id, size=stored.size)
    ctx.cache.put(NodeEntry(name=f"{node.name}/{folder}", key=key, layers=(piece,)))
    return stored
