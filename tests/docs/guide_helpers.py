"""Read the user guide (docs/guide/*.md) into code blocks, and run them.

A fenced block may be preceded (on the line before, blank lines aside) by one
HTML comment that tells the test what to do with it:

- ``<!-- norun: why -->``: not run (it needs a server, or installs something);
- ``<!-- file: NAME -->``: the block is a file the following blocks use; it is
  written into the working folder under NAME;
- ``<!-- fixture: why -->``: the ``vermilion demo`` command that the session
  fixture runs (through ``run_demo``, with the arguments parsed from the block).

Other blocks: ``python`` blocks run in one namespace per page, in order;
``bash``/``sh``/``console`` blocks must hold ``vermilion ...`` commands only,
which run through ``vermilion.cli.main``; blocks in other languages (YAML, TOML,
SQL, text) are shown only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE = DOCS / "guide"
#: Real files kept in the repository (tests/data/README.md says where each comes from).
DATA = ROOT / "tests" / "data"

SHELL = ("bash", "sh", "shell", "console")
#: Names a page's code may use that the test sets (the page assigns them visibly).
PREDEFINED = ("REPO", "OUT", "DATA")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>norun|file|fixture)\s*(?::\s*(?P<arg>.*?))?\s*-->\s*$")
_ASSIGN = re.compile(rf"^({'|'.join(PREDEFINED)})\s*=")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # line number of the first line of code (1-based)
    lang: str
    code: str
    marker: str | None = None  # norun, file, fixture
    marker_arg: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.marker is None and (self.lang == "python" or self.lang in SHELL)


def guide_pages() -> list[Path]:
    """The pages of the guide, in reading order (their names start with a number)."""
    return sorted(GUIDE.glob("*.md"))


def parse_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the marker written before it."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group("indent"), m.group("lang").lower()
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: unclosed code block")
        body = [
            ln[len(indent) :] if ln.startswith(indent) else ln.lstrip() for ln in lines[start:j]
        ]
        block = Block(page, start + 1, lang, "\n".join(body) + "\n")
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0:
            mm = _MARKER.match(lines[k])
            if mm:
                block.marker = mm.group("kind")
                block.marker_arg = (mm.group("arg") or "").strip()
        blocks.append(block)
        i = j + 1
    return blocks


def shell_commands(block: Block) -> list[list[str]]:
    """The commands of a shell block (continuation lines joined), each split into words."""
    commands, current = [], ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append(shlex.split(current + line))
        current = ""
    if current:
        commands.append(shlex.split(current))
    return commands


def python_source(block: Block) -> str:
    """The code of a python block, assignments of `PREDEFINED` names blanked out.

    Leading newlines keep the line numbers of the page, so tracebacks point into it.
    """
    lines = [("" if _ASSIGN.match(ln) else ln) for ln in block.code.splitlines()]
    return "\n" * (block.line - 1) + "\n".join(lines) + "\n"


def assigned_names(block: Block) -> set[str]:
    """The `PREDEFINED` names a block assigns at its top level."""
    return {m.group(1) for ln in block.code.splitlines() if (m := _ASSIGN.match(ln))}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Anchors of every heading of ``page`` (outside code blocks)."""
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if _FENCE.match(line) or line.strip() == "```":
            fenced = not fenced
            continue
        if not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def links(page: Path) -> list[str]:
    """Relative Markdown link targets of ``page`` (outside code blocks)."""
    text, out, fenced = page.read_text(), [], False
    for line in text.splitlines():
        if _FENCE.match(line) or line.strip() == "```":
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"^[a-z]+://", target):
                out.append(target)
    return out
