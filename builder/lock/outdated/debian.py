"""The Debian pins of a lock compared with what apt offers now: the system closure, a
bootstrap base's package set, and the base image reference itself.

A newer version the spec allows that `<suite>-security` carries makes the pin a security
update.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import TypeVar

from builder.lock.outdated.report import Pin
from builder.lock.outdated.sources import Sources
from builder.model.inputs import BaseInputs, ImageBase, SystemInputs
from builder.model.spec import Spec
from builder.resolve.apt import system_request
from builder.resolve.madison import parse_madison
from builder.resolve.versions import debian_compare, debian_newest

T = TypeVar("T")


def debian_pins(spec: Spec, typed: Mapping[str, object], sources: Sources) -> list[Pin]:
    """The Debian packages of the base and system nodes (`typed`: node -> typed inputs)."""
    system_name, system = _one(typed, SystemInputs)
    in_system = {p.name: p.version for p in system.packages} if system else {}
    base_name, base = _one(typed, BaseInputs)
    # A base package the system layer upgraded is that pin, not the base's.
    locked = [
        (base_name, p.name, p.version)
        for p in (base.packages or () if base else ())
        if p.name not in in_system
    ]
    locked += [(system_name, name, version) for name, version in sorted(in_system.items())]
    if not locked:
        return []
    offers = parse_madison(sources.madison(sorted({name for _, name, _ in locked})))
    constraints = dict(r.split("=", 1) for r in system_request(spec) if "=" in r)
    pins = []
    for node, name, version in locked:
        offered = offers.get(name, [])
        latest = debian_newest(o.version for o in offered)
        pattern = constraints.get(name)
        allowed = debian_newest(
            o.version for o in offered if pattern is None or fnmatch.fnmatchcase(o.version, pattern)
        )
        newer = [
            o
            for o in offered
            if debian_compare(o.version, version) > 0
            and allowed
            and debian_compare(o.version, allowed) <= 0
        ]
        pins.append(
            Pin(
                node=node,
                package=name,
                kind="deb",
                locked=version,
                allowed=allowed,
                latest=latest,
                security=any(o.security for o in newer),
                update=bool(latest) and debian_compare(latest, version) > 0,
            )
        )
    return pins


def _one(typed: Mapping[str, object], cls: type[T]) -> tuple[str, T | None]:
    """The node whose inputs are a `cls`, and them (("", None) if none is)."""
    for name, inputs in typed.items():
        if isinstance(inputs, cls):
            return name, inputs
    return "", None


def base_image_pins(typed: Mapping[str, object], sources: Sources) -> list[Pin]:
    """An image base's reference, against what its tag points at now."""
    name, base = _one(typed, BaseInputs)
    if not isinstance(base, ImageBase):
        return []
    ref, pinned = base.image, base.pinned
    now = pinned if "@sha256:" in ref else sources.image_pin(ref)
    return [
        Pin(
            node=name,
            package=ref,
            kind="base",
            locked=pinned,
            allowed=now,
            latest=now,
            update=now != pinned,
        )
    ]
