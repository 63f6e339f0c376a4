"""Every ```bpftrace example in docs/*.md must parse.

The documentation shows the language as implemented; an example that stopped
parsing means either the docs or the grammar drifted.  Blocks fenced as
```text (output, diagnostics, deliberately wrong code) are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.frontend.parser import parse
from pytrace.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))

# An opening fence (``` or ~~~, possibly indented, e.g. inside a list) with
# its info string; the block runs to the next fence of the same kind.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


def extract_blocks(text: str) -> list[tuple[int, str, str]]:
    """(first line number, language, code) of every fenced block in ``text``."""
    blocks: list[tuple[int, str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group("indent"), m.group("fence")
        info = m.group("info").strip().split()
        lang = info[0].lower() if info else ""
        start = i + 1
        j = start
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and stripped.strip(fence[0]) == "":
                break
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[start:j]]
        blocks.append((start + 1, lang, "\n".join(body)))
        i = j + 1
    return blocks


def _cases() -> list[pytest.param]:  # type: ignore[name-defined]
    cases = []
    for doc in DOCS:
        for line, lang, code in extract_blocks(doc.read_text(encoding="utf-8")):
            if lang == "bpftrace":
                cases.append(pytest.param(doc, line, code, id=f"{doc.name}:{line}"))
    return cases


CASES = _cases()


def test_extractor() -> None:
    text = "x\n```bpftrace\nBEGIN { }\n```\n\n```text\nno\n```\n  ```bpftrace\n  END { }\n  ```\n"
    assert extract_blocks(text) == [(3, "bpftrace", "BEGIN { }"), (7, "text", "no"), (10, "bpftrace", "END { }")]


def test_docs_have_examples() -> None:
    assert (ROOT / "docs" / "language.md").exists()
    assert len(CASES) >= 50, "docs/language.md should show every construct with an example"


@pytest.mark.parametrize("doc,line,code", CASES)
def test_example_parses(doc: Path, line: int, code: str) -> None:
    diags = Diagnostics()
    program = parse(SourceFile(f"{doc.name}:{line}", code), diags)
    assert not diags.has_errors(), f"{doc.name}, block at line {line}:\n{code}\n\n{diags.render()}"
    assert (program.probes or program.config or program.macros or program.imports or program.c_items
            or program.map_decls), f"{doc.name}, block at line {line} is empty"
