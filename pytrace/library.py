"""The standard library on disk: where its snippets and tools are, and what
each tool says about itself.

The stdlib is written in the language itself: snippets (``stdlib/*.pt``,
imported with ``import "name";``) and whole tools (``stdlib/tools/*.pt``,
run with ``pytrace tool NAME``).  In a wheel it is the package
``pytrace.stdlib``; in a source checkout, ``stdlib/`` at the top of the
repository.  A tool begins with a header of line comments::

    // execsnoop: trace new processes (exec), with their arguments.
    //
    // Usage: pytrace tool execsnoop [PID]
    // ...

whose first line names the tool and describes it in one line (``pytrace
tools`` lists those lines) and whose ``Usage:`` line says how to run it.

A tool that needs more than one script can do (its own option parsing,
several scripts, post-processing in Python: ``strace``, ``audit``) is a
Python module ``stdlib/tools/NAME.py`` with the same header written with
``#`` and a function ``main(argv, stdout, stderr) -> int``; it drives
pytrace through ``pytrace.api``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple, TextIO

_HEADER = re.compile(r"^(?://|#)\s*([A-Za-z0-9_.-]+):\s*(.+?)\s*$")
_USAGE = re.compile(r"^(?://|#)\s*Usage:\s*(.+?)\s*$")


def stdlib_dirs() -> list[Path]:
    """Where pytrace's stdlib is: the installed package (pytrace.stdlib),
    or stdlib/ of a source checkout."""
    try:
        from importlib import resources
        found = Path(str(resources.files("pytrace.stdlib")))
        if found.is_dir():
            return [found]
    except (ModuleNotFoundError, TypeError):
        pass
    return [Path(__file__).resolve().parents[1] / "stdlib"]


def snippet_names() -> list[str]:
    """Every snippet ``import`` can name from the stdlib, as paths under it
    (``helpers.pt``, ``net/sockaddr.pt``); tools are not snippets."""
    names: set[str] = set()
    for d in stdlib_dirs():
        try:
            names.update(p.relative_to(d).as_posix() for p in d.rglob("*.pt")
                         if p.is_file() and p.relative_to(d).parts[0] != "tools")
        except OSError:
            continue
    return sorted(names)


class Tool(NamedTuple):
    name: str
    path: Path
    description: str
    usage: str

    @property
    def is_python(self) -> bool:
        """A Python-driven tool (run by its main()), not a script."""
        return self.path.suffix == ".py"


def tools() -> list[Tool]:
    """The shipped tools, by name."""
    out: dict[str, Tool] = {}
    for d in stdlib_dirs():
        tool_dir = d / "tools"
        try:
            files = sorted([*tool_dir.glob("*.pt"), *tool_dir.glob("*.py")])
        except OSError:
            continue
        for path in files:
            if path.name.startswith("_"):
                continue
            out.setdefault(path.stem, read_tool(path))
    return [out[k] for k in sorted(out)]


def read_tool(path: Path) -> Tool:
    """A tool's name, description and usage from its header."""
    description, usage = "", f"pytrace tool {path.stem}"
    try:
        with open(path, encoding="utf-8") as fh:
            head = [next(fh, "") for _ in range(40)]
    except OSError:
        head = []
    for line in head:
        line = line.strip()
        m = _HEADER.match(line)
        if m and m.group(1) == path.stem and not description:
            description = m.group(2)
        u = _USAGE.match(line)
        if u:
            usage = u.group(1)
    return Tool(path.stem, path, description, usage)


def find_tool(name: str) -> Tool | None:
    """The tool called ``name`` (or at a path ending in .pt)."""
    if os.sep in name or name.endswith((".pt", ".bt", ".py")):
        path = Path(name)
        return read_tool(path) if path.is_file() else None
    for tool in tools():
        if tool.name == name:
            return tool
    return None


def run_python_tool(tool: Tool, argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run a Python-driven tool's ``main(argv, stdout, stderr)``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"pytrace_tool_{tool.name}", tool.path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the tool {tool.path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(argv, stdout, stderr)
    return int(result or 0)
