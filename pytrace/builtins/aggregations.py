"""Aggregation functions: count, sum, avg, min, max, stats, hist, lhist.

They may only appear as ``@map = f(...)``; the map's value type becomes the
aggregation (printed at exit in bpftrace's formats).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..frontend import ast
from ..semantic import types as T
from .registry import Builtin, Kind

if TYPE_CHECKING:
    from ..semantic.typecheck import Checker


def _int_arg(e: ast.Call, ck: "Checker", i: int) -> T.Type:
    t = ck.expr(e.args[i])
    if not (t.is_integer() or isinstance(t, T.PointerType)):
        ck.error(f"{e.name}() needs an integer, not {t}", e.args[i].span)
        return T.I64
    return t


def _simple(kind: T.AggKind):  # type: ignore[no-untyped-def]
    def check(e: ast.Expr, ck: "Checker") -> T.Type:
        assert isinstance(e, ast.Call)
        if kind is T.AggKind.COUNT:
            return T.AggregationType(kind, False)
        t = _int_arg(e, ck, 0)
        signed = bool(getattr(t, "signed", False))
        return T.AggregationType(kind, signed)
    return check


def _hist(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = _int_arg(e, ck, 0)
    bits = 0
    if len(e.args) == 2:
        n = ck.const_int(e.args[1])
        ck.expr(e.args[1])
        if n is None or not 0 <= n <= 5:
            ck.error("hist(): the second argument (sub-buckets per power of two) must be a constant 0 to 5",
                     e.args[1].span)
        elif n:
            # Log-linear buckets came with bpftrace 0.20; the output and the
            # bucket function here are bpftrace 0.17's.
            ck.error("hist(): sub-buckets (a second argument above 0) are not supported; use hist(n) or lhist()",
                     e.args[1].span)
    return T.AggregationType(T.AggKind.HIST, bool(getattr(t, "signed", False)), (bits,))


def _lhist(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = _int_arg(e, ck, 0)
    values = []
    for i, what in ((1, "min"), (2, "max"), (3, "step")):
        ck.expr(e.args[i])
        n = ck.const_int(e.args[i])
        if n is None:
            ck.error(f"lhist(): {what} must be a constant integer", e.args[i].span)
            return T.AggregationType(T.AggKind.LHIST, False, (0, 1, 1))
        values.append(n)
    lo, hi, step = values
    if lo < 0:
        ck.error("lhist(): min must be non-negative", e.args[1].span)
    elif hi <= lo:
        ck.error(f"lhist(): max ({hi}) must be greater than min ({lo})", e.args[2].span)
    elif step <= 0:
        ck.error("lhist(): step must be positive", e.args[3].span)
    elif (hi - lo) // step > 1000:
        ck.error(f"lhist(): too many buckets ({(hi - lo) // step}; the limit is 1000)", e.args[3].span)
    return T.AggregationType(T.AggKind.LHIST, bool(getattr(t, "signed", False)), (lo, hi, step))


ENTRIES: list[Builtin] = [
    Builtin("count", Kind.AGGREGATION, _simple(T.AggKind.COUNT), "@m = count()", "count events"),
    Builtin("sum", Kind.AGGREGATION, _simple(T.AggKind.SUM), "@m = sum(value)", "sum of values",
            min_args=1, max_args=1),
    Builtin("avg", Kind.AGGREGATION, _simple(T.AggKind.AVG), "@m = avg(value)", "average of values",
            min_args=1, max_args=1),
    Builtin("min", Kind.AGGREGATION, _simple(T.AggKind.MIN), "@m = min(value)", "smallest value",
            min_args=1, max_args=1),
    Builtin("max", Kind.AGGREGATION, _simple(T.AggKind.MAX), "@m = max(value)", "largest value",
            min_args=1, max_args=1),
    Builtin("stats", Kind.AGGREGATION, _simple(T.AggKind.STATS), "@m = stats(value)",
            "count, average and total", min_args=1, max_args=1),
    Builtin("hist", Kind.AGGREGATION, _hist, "@m = hist(value[, bits])", "power-of-two histogram",
            min_args=1, max_args=2),
    Builtin("lhist", Kind.AGGREGATION, _lhist, "@m = lhist(value, min, max, step)", "linear histogram",
            min_args=4, max_args=4),
]
