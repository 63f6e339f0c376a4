"""Source files and spans: where every AST node and diagnostic points to.

A ``Span`` is a half-open byte range in one ``SourceFile``; line and column
numbers (1-based, as editors count) are computed on demand from a line-start
index so that building spans on the hot parse path costs nothing.
"""

from __future__ import annotations

import bisect

from .records import dataclass, field


@dataclass(eq=False)
class SourceFile:
    """The text of one script (a file, ``-e`` text named ``stdin``, or a REPL line)."""

    name: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def line_starts(self) -> list[int]:
        if not self._line_starts:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos != -1:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        starts = self.line_starts()
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self.line_starts()
        if line < 1 or line > len(starts):
            return ""
        start = starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start:] if end == -1 else self.text[start:end]

    def span(self, start: int, end: int) -> "Span":
        return Span(self, start, end)


@dataclass(frozen=True, eq=False)
class Span:
    """A half-open character range ``[start, end)`` in a source file."""

    file: SourceFile
    start: int
    end: int

    @property
    def line(self) -> int:
        return self.file.line_col(self.start)[0]

    @property
    def col(self) -> int:
        return self.file.line_col(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.file.line_col(max(self.start, self.end - 1))[0]

    @property
    def end_col(self) -> int:
        """1-based column of the last character of the span (inclusive)."""
        return self.file.line_col(max(self.start, self.end - 1))[1]

    @property
    def text(self) -> str:
        return self.file.text[self.start:self.end]

    def to(self, other: "Span") -> "Span":
        """The span covering ``self`` through ``other``."""
        return Span(self.file, min(self.start, other.start), max(self.end, other.end))

    def __repr__(self) -> str:
        return f"<{self.file.name}:{self.line}:{self.col}>"
