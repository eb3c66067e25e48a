"""The README and docs/ pages: every relative link reaches its file (and heading), and every
page is linked from the README, so a newcomer can get to each one and no link leads nowhere.

Links are read outside fenced code blocks; an `#anchor` is matched against the target's
headings as GitHub spells them (lower case, punctuation dropped, spaces as hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page))


def _anchors(page: Path) -> set[str]:
    """The `#fragment` of each heading of `page`, as GitHub makes it."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(page).splitlines():
        if not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link} (no {target.relative_to(REPO)})")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{page.name}: {broken}"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in _links(README)}
    assert [page.name for page in PAGES if page not in linked] == []


def test_the_readme_states_both_set_up_commands() -> None:
    """`make demo` and `make test` are the README's two commands; `.ci/run` runs the second."""
    text = README.read_text()
    assert "```sh\nmake demo\n```" in text
    assert "```sh\nmake test\n```" in text
    assert (REPO / ".ci/run").read_text().strip().endswith("\nmake test")
