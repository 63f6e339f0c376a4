"""Diagnostics: the one type for everything a user did wrong in a script.

Passes never raise for user errors: they append ``Diagnostic`` objects to a
``Diagnostics`` collector and carry on, so one run reports as many errors as
it can find.  Rendering follows the compiler convention users know::

    stdin:1:50: error: unknown function 'cuont'
    tracepoint:syscalls:sys_enter_openat { @[comm] = cuont(); }
                                                     ^~~~~
    hint: did you mean 'count'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Iterator

from .source import Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass
class Note:
    """A secondary location attached to a diagnostic (e.g. 'first defined here')."""

    message: str
    span: Span | None = None


@dataclass
class Diagnostic:
    severity: Severity
    message: str
    span: Span | None
    notes: list[Note] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def render(self) -> str:
        out = [_render_one(self.severity.value, self.message, self.span)]
        for note in self.notes:
            out.append(_render_one("note", note.message, note.span))
        for hint in self.hints:
            out.append(f"hint: {hint}")
        return "\n".join(out)


def _render_one(kind: str, message: str, span: Span | None) -> str:
    if span is None:
        return f"{kind}: {message}"
    line, col = span.line, span.col
    head = f"{span.file.name}:{line}:{col}: {kind}: {message}"
    src = span.file.line_text(line)
    # Tabs keep their width in the caret line so the caret lands under the column.
    prefix = "".join("\t" if ch == "\t" else " " for ch in src[: col - 1])
    if span.end_line == line:
        width = max(1, span.end - span.start)
    else:
        width = max(1, len(src) - (col - 1))
    width = min(width, max(1, len(src) - (col - 1)))
    caret = prefix + "^" + "~" * (width - 1)
    return f"{head}\n{src}\n{caret}"


class Diagnostics:
    """An ordered collector of diagnostics for one compilation."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, message: str, span: Span | None, *, hints: Iterable[str] = (),
              notes: Iterable[Note] = ()) -> Diagnostic:
        d = Diagnostic(Severity.ERROR, message, span, list(notes), list(hints))
        self.items.append(d)
        return d

    def warning(self, message: str, span: Span | None, *, hints: Iterable[str] = ()) -> Diagnostic:
        d = Diagnostic(Severity.WARNING, message, span, [], list(hints))
        self.items.append(d)
        return d

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def extend(self, other: "Diagnostics") -> None:
        self.items.extend(other.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def render(self) -> str:
        return "\n".join(d.render() for d in self.items)


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """'did you mean' hints for a near-miss name, closest first."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return [f"did you mean '{m}'?" for m in matches]


class CompileError(Exception):
    """Raised at a stage boundary when a stage reported errors; carries them all."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__(diagnostics.render())
        self.diagnostics = diagnostics
