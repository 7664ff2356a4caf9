"""The module map of docs/architecture.md, made from the code's own docstrings.

Each package under ``wwnode/`` and ``sessionproc/`` (subpackages included,
found by walking the folders, so a module moved into a package shows up
there) is listed with the first paragraph of its ``__init__`` docstring, then
each of its modules with the first paragraph of its own.  Docstrings are read
with ``ast``, nothing is imported.  The map lives between the markers below in
docs/architecture.md; ``tests/test_docs.py`` fails when it differs from what
this makes now.

    .venv/bin/python tests/modulemap.py           # print the map
    .venv/bin/python tests/modulemap.py --write   # rewrite the block in docs/architecture.md
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wwnode", "sessionproc")
PAGE = ROOT / "docs" / "architecture.md"
START = "<!-- module-map:start -->"
END = "<!-- module-map:end -->"
NO_DOCSTRING = "(no docstring)"


def first_paragraph(path: Path) -> str:
    """The first paragraph of the file's docstring, on one line, in Markdown."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    if not doc:
        return NO_DOCSTRING
    para = " ".join(doc.strip().split("\n\n", 1)[0].split())
    para = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", para)  # :class:`Tracker` -> `Tracker`
    return para.replace("``", "`")


def packages(root: Path = ROOT) -> list[Path]:
    """Every package folder under PACKAGES, parents before their subpackages."""
    found = []
    for name in PACKAGES:
        for init in sorted((root / name).rglob("__init__.py")):
            if "__pycache__" not in init.parts:
                found.append(init.parent)
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def render(root: Path = ROOT) -> str:
    """The map as Markdown: a paragraph per package, a bullet per module."""
    out = []
    for pkg in packages(root):
        rel = pkg.relative_to(root).as_posix()
        out.append(f"**`{rel}/`**: {first_paragraph(pkg / '__init__.py')}")
        out.append("")
        for mod in sorted(pkg.glob("*.py")):
            if mod.name != "__init__.py":
                out.append(f"- `{mod.name}`: {first_paragraph(mod)}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def split_page(text: str) -> tuple[str, str, str]:
    """The page before the block, the block, the page after it."""
    start, end = text.index(START) + len(START), text.index(END)
    return text[:start], text[start:end], text[end:]


def current(page: Path = PAGE) -> str:
    """The map as the page holds it now."""
    return split_page(page.read_text(encoding="utf-8"))[1].strip("\n") + "\n"


def write(page: Path = PAGE) -> bool:
    """Rewrite the block; True when the page changed."""
    text = page.read_text(encoding="utf-8")
    before, _, after = split_page(text)
    new = f"{before}\n{render()}{after}"
    if new != text:
        page.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the block in {PAGE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.write:
        print(f"{PAGE.relative_to(ROOT)}: {'rewritten' if write() else 'up to date'}")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
