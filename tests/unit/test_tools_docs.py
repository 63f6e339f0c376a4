"""docs/tools.md covers every shipped tool: a section with its usage and an
example of its output, and a row in the index table."""

from __future__ import annotations

import re
from pathlib import Path

from pytrace.library import tools

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tools.md").read_text()


def _section(name: str) -> str:
    m = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^#{{2,3}} |\Z)", DOC, re.M | re.S)
    assert m is not None, f"docs/tools.md has no section for {name}"
    return m.group(1)


def test_every_tool_has_a_section_with_usage_and_an_example() -> None:
    shipped = tools()
    assert len(shipped) >= 31
    for tool in shipped:
        body = _section(tool.name)
        assert f"pytrace tool {tool.name}" in body, tool.name
        assert body.count("```") >= 2, f"{tool.name}: no example output"
        assert f"| [`{tool.name}`](#{tool.name}) | {tool.description} |" in DOC


def test_every_tool_has_a_usage_header() -> None:
    for tool in tools():
        assert tool.usage.startswith(f"pytrace tool {tool.name}"), (tool.name, tool.usage)
