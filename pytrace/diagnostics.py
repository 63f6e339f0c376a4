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
from enum import Enum
from typing import Iterable, Iterator

from .records import dataclass, field
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


def _edit_distance(a: str, b: str, bound: int | None = None) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions
    and transpositions of neighbours each cost 1 ('cuont' is 1 from 'count').
    With ``bound``, any distance above it is reported as ``bound + 1`` as
    soon as a whole row exceeds it (a library's thousands of symbols are
    mostly rejected after a few characters)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if bound is not None and min(cur) > bound:
            # Row minima never decrease by more than the transposition's 1
            # over two rows: past the bound for two rows, it stays past.
            if not prev2 or min(prev) > bound:
                return bound + 1
        prev2, prev = prev, cur
    return prev[-1]


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """'did you mean' hints for a near-miss name, closest first.

    A candidate a typo or two away wins (by edit distance, so swapped letters
    count once: 'prinft' finds 'printf', not 'print'); otherwise difflib's
    similarity picks a looser match.
    """
    names = [c for c in dict.fromkeys(candidates) if c and c != name]
    if not name or not names:
        return []
    n = len(name)
    limit = 0 if n <= 2 else 1 if n <= 5 else 2 if n <= 9 else 3
    best: tuple[int, int, float, str] | None = None
    for c in names:
        if abs(len(c) - n) > limit:
            continue  # the distance is at least the difference in length
        d = _edit_distance(name.lower(), c.lower(), limit)
        if c.lower() == name.lower():
            d = 0
        if d <= limit:
            key = (d, abs(len(c) - n), -difflib.SequenceMatcher(None, name, c).ratio(), c)
            if best is None or key < best:
                best = key
    if best is not None:
        return [f"did you mean '{best[3]}'?"]
    # A ratio of 0.75 or more needs lengths within 0.6x-1.67x of each other
    # (2 * matches / total length, matches <= the shorter): a library's
    # thousands of symbols are cut down before difflib compares them.
    near = [c for c in names if 0.6 * n <= len(c) <= n / 0.6]
    matches = difflib.get_close_matches(name, near, n=1, cutoff=0.75)
    return [f"did you mean '{m}'?" for m in matches]


class CompileError(Exception):
    """Raised at a stage boundary when a stage reported errors; carries them all."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__(diagnostics.render())
        self.diagnostics = diagnostics
