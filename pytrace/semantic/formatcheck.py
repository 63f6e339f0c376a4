"""Checks format-string calls (printf, system, cat, time, strftime) for the
type checker, pointing each problem at the exact specifier in the source.

``formats`` knows what a format string means; this module maps its offsets
(into the unescaped string) back to source columns and reports diagnostics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..frontend import ast
from ..source import Span
from . import formats
from .types import Type

if TYPE_CHECKING:
    from .typecheck import Checker


def source_offsets(raw: str) -> list[int]:
    """For a string literal as written (with its quotes), the offset within
    ``raw`` of each character of the unescaped value, plus one past the end."""
    out: list[int] = []
    i, n = 1, len(raw) - 1
    while i < n:
        out.append(i)
        if raw[i] != "\\" or i + 1 >= n:
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in "xX":
            j = i + 2
            while j < n and j < i + 4 and raw[j] in "0123456789abcdefABCDEF":
                j += 1
            i = j
        elif nxt in "01234567":
            j = i + 1
            while j < n and j < i + 4 and raw[j] in "01234567":
                j += 1
            i = j
        else:
            i += 2
    out.append(n)
    return out


def _span(node: ast.String, start: int, end: int) -> Span | None:
    if node.span is None:
        return None
    raw = node.span.text
    offs = source_offsets(raw)
    if len(offs) != len(node.value) + 1:
        return node.span
    a = node.span.start + offs[min(start, len(offs) - 1)]
    b = node.span.start + offs[min(end, len(offs) - 1)]
    return Span(node.span.file, a, max(b, a + 1))


def check_call(call: ast.Call, fmt: ast.String, arg_types: list[Type], ck: "Checker") -> None:
    result = formats.parse_format(fmt.value)
    errors = False
    for p in result.problems:
        span = _span(fmt, p.start, p.end)
        if p.severity == "error":
            errors = True
            ck.error(f"{call.name}: {p.message}", span)
        else:
            ck.warning(f"{call.name}: {p.message}", span)
    if errors:
        return
    for p in formats.check_args(result.segments, arg_types, func=call.name):
        if p.index < len(arg_types) and p.conversion is None:
            span = call.args[p.index + 1].span
        elif p.conversion is not None and p.index >= len(arg_types):
            span = _span(fmt, p.conversion.start, p.conversion.end)
        elif p.index < len(arg_types):
            span = call.args[p.index + 1].span
        else:
            span = call.span
        hints = []
        if "expects" in p.message and p.conversion is not None and p.conversion.kind == "integer":
            hints = ["use %s for strings and symbols"]
        elif "expects" in p.message and p.conversion is not None and p.conversion.kind == "string":
            hints = ["use %d (or %lu, %lx) for integers"]
        ck.error(p.message, span, hints=hints)


def check_time_format_call(call: ast.Call, fmt: ast.Expr, ck: "Checker") -> None:
    if not isinstance(fmt, ast.String):
        return
    if len(fmt.value.encode()) >= 64:
        ck.error(f"{call.name}: the format is too long (64 bytes or more)", fmt.span)
        return
    for p in formats.check_time_format(fmt.value, builtin=call.name):
        span = _span(fmt, p.start, p.end)
        if p.severity == "error":
            ck.error(f"{call.name}: {p.message}", span)
        else:
            ck.warning(f"{call.name}: {p.message}", span)
