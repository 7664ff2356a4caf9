"""The documentation cannot drift: the module map of docs/architecture.md is
what ``tests/modulemap.py`` makes from the docstrings now, and every relative
link in README.md and docs/*.md reaches a file that exists (and, into a
Markdown page, a heading that exists)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import modulemap  # noqa: E402  (tests/ is not a package)

ROOT = modulemap.ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The text without code blocks and code spans, where a link is not a link."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(f"{base}-{count}" if count else base)
    return found


def test_module_map_is_current():
    assert modulemap.current() == modulemap.render(), (
        "docs/architecture.md's module map differs from the docstrings: "
        "run .venv/bin/python tests/modulemap.py --write")


def test_module_map_walks_every_package():
    made = modulemap.render()
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in modulemap.PACKAGES and "__pycache__" not in rel:
            assert f"**`{rel}/`**" in made
            for mod in init.parent.glob("*.py"):
                if mod.name != "__init__.py":
                    assert f"- `{mod.name}`:" in made


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # a URL: not ours to check
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_slug_matches_github():
    assert slug("Try it: `.venv/bin/wwnode demo`") == "try-it-venvbinwwnode-demo"
    assert slug("The account's own messages") == "the-accounts-own-messages"
    assert slug("The blob store (`BLOB_STORE_URL`)") == "the-blob-store-blob_store_url"


def _examples(heading: str) -> list[str]:
    """The lines of the ```text blocks of docs/protocol.md's examples section."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```text\n(.*?)```", section, re.S) for line in block.splitlines()]


def test_every_command_has_an_example_the_node_accepts():
    import orjson

    from wwnode import commands

    shown = set()
    for line in _examples("Every command and event, by example"):
        if line.startswith("{"):
            continue
        queue, body = line.split(None, 1)
        commands.parse(queue, body.encode())  # raises Rejected for a body the node would refuse
        shown.add(queue)
        assert orjson.loads(body)["key"]
    assert shown == set(commands.COMMANDS)


def test_every_event_of_the_tables_has_an_example():
    import json

    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    named = set()
    for table in re.findall(r"^\| event \|.*?\n(?:\|.*\n)+", text, re.M):  # the tables whose first column is the event
        for row in table.splitlines()[2:]:
            named |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    shown = {json.loads(line)["event"] for line in _examples("Every command and event, by example")
             if line.startswith("{")}
    assert named <= shown, f"events without an example: {sorted(named - shown)}"
