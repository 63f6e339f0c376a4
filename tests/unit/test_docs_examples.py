"""Every ```bpftrace example in docs/*.md must parse.

The documentation shows the language as implemented; an example that stopped
parsing means either the docs or the grammar drifted.  Blocks fenced as
```text (output, diagnostics, deliberately wrong code) are not checked.

The examples of docs/builtins.md, docs/running.md and docs/output.md must
also pass the whole front end against the running kernel, as
``pytrace --dry-run`` does (kernel tests: root only).  Words after
``bpftrace`` in the fence are the flags the example needs: ```bpftrace
--unsafe, ```bpftrace -c.  docs/builtins.md must have a section for every
builtin of the registry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytrace.builtins.registry import default_registry
from pytrace.diagnostics import Diagnostics
from pytrace.frontend.parser import parse
from pytrace.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Pages whose examples must also type-check against the live kernel.
CHECKED_DOCS = ("builtins.md", "running.md", "output.md", "probes.md")
# Fence words that stand for command-line flags of an example.
KNOWN_FLAGS = frozenset({"--unsafe", "-c"})

# An opening fence (``` or ~~~, possibly indented, e.g. inside a list) with
# its info string; the block runs to the next fence of the same kind.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


def extract_blocks(text: str) -> list[tuple[int, str, str]]:
    """(first line number, language, code) of every fenced block in ``text``."""
    return [(line, lang, code) for line, lang, _, code in extract_blocks_with_flags(text)]


def extract_blocks_with_flags(text: str) -> list[tuple[int, str, list[str], str]]:
    """(first line number, language, the fence's other words, code) of every
    fenced block in ``text``."""
    blocks: list[tuple[int, str, list[str], str]] = []
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
        blocks.append((start + 1, lang, info[1:], "\n".join(body)))
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


def _checked_cases() -> list[pytest.param]:  # type: ignore[name-defined]
    cases = []
    for name in CHECKED_DOCS:
        doc = ROOT / "docs" / name
        if not doc.exists():
            continue
        for line, lang, flags, code in extract_blocks_with_flags(doc.read_text(encoding="utf-8")):
            if lang == "bpftrace":
                cases.append(pytest.param(doc, line, flags, code, id=f"{doc.name}:{line}",
                                          marks=pytest.mark.kernel))
    return cases


CHECKED_CASES = _checked_cases()


def test_extractor() -> None:
    text = "x\n```bpftrace\nBEGIN { }\n```\n\n```text\nno\n```\n  ```bpftrace\n  END { }\n  ```\n"
    assert extract_blocks(text) == [(3, "bpftrace", "BEGIN { }"), (7, "text", "no"), (10, "bpftrace", "END { }")]
    flagged = "```bpftrace --unsafe -c\nBEGIN { }\n```\n"
    assert extract_blocks_with_flags(flagged) == [(2, "bpftrace", ["--unsafe", "-c"], "BEGIN { }")]


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


def test_fence_flags_are_known() -> None:
    for param in CHECKED_CASES:
        doc, line, flags, _code = param.values
        unknown = set(flags) - KNOWN_FLAGS
        assert not unknown, f"{doc.name}, block at line {line}: unknown fence flags {sorted(unknown)}"


@pytest.fixture(scope="module")
def live_kernel():  # type: ignore[no-untyped-def]
    from pytrace.kernel.info import LiveKernel
    return LiveKernel()


@pytest.mark.parametrize("doc,line,flags,code", CHECKED_CASES)
def test_example_passes_dry_run(doc: Path, line: int, flags: list[str], code: str, live_kernel) -> None:  # type: ignore[no-untyped-def]
    """What ``pytrace --dry-run [FLAGS] -e CODE`` checks: every pass of the
    front end, probes resolved against this kernel's tracefs and BTF."""
    from pytrace.semantic.pipeline import CompileOptions, run
    diags = Diagnostics()
    options = CompileOptions(kernel=live_kernel, unsafe="--unsafe" in flags, has_cpid="-c" in flags, environ={})
    run(SourceFile(f"{doc.name}:{line}", code), options, diags)
    assert not diags.has_errors(), f"{doc.name}, block at line {line}:\n{code}\n\n{diags.render()}"


def _builtin_heading(name: str) -> str:
    return "### `arg0` .. `argN`" if name == "argN" else f"### `{name}`"


def test_builtins_page_covers_the_registry() -> None:
    """Every builtin has a section in docs/builtins.md whose first example uses it."""
    page = (ROOT / "docs" / "builtins.md").read_text(encoding="utf-8")
    names = [e.name for e in default_registry().entries] + ["argN"]
    sections = re.split(r"(?m)^(?=### )", page)
    by_heading = {sec.split("\n", 1)[0].strip(): sec for sec in sections if sec.startswith("### ")}
    missing = [n for n in names if _builtin_heading(n) not in by_heading]
    assert not missing, f"docs/builtins.md has no section for {missing}"
    for name in names:
        section = by_heading[_builtin_heading(name)]
        examples = [code for _, lang, _, code in extract_blocks_with_flags(section) if lang == "bpftrace"]
        assert examples, f"docs/builtins.md: the section of {name} has no ```bpftrace example"
        used = "arg" if name == "argN" else name
        assert re.search(rf"\b{re.escape(used)}", examples[0]), \
            f"docs/builtins.md: the first example of {name} does not use it:\n{examples[0]}"
