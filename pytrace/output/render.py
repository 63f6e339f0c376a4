"""What the text and JSON renderers share: 0.17's Output base class.

bpftrace 0.17 (src/output.cpp) has an ``Output`` base class with the value
rendering and map walking, and ``TextOutput``/``JsonOutput`` overriding a
handful of hooks (how a tuple, a record field, a key, a key/value pair and the
separator between entries look; whether a string is quoted).  Renderer mirrors
that split so that the two formats cannot drift apart; text.py and json.py
subclass it.  Renderers hold no state.

Also here: column_rows(), the fast path's view of a map held as Columns (the
sorted key and value columns that text.py and json.py format with one
``%`` each), and the bucket-table arithmetic of hist/lhist printing, which both
formats share, including 0.17's C quirks (bucket counts read through a 32-bit
``int``, the bar computed in single-precision float, lhist parameters held in
``int``).
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Sequence

from pytrace.output import order
from pytrace.output.values import (
    INT,
    STR,
    Avg,
    Buffer,
    Count,
    Hist,
    Key,
    LHist,
    MapData,
    Max,
    Min,
    Record,
    Stack,
    Stats,
    Sum,
    Value,
    c_div,
    to_s32,
)
from pytrace.semantic.formats import hex_format_buffer
from pytrace.semantic.types import (
    AggregationType,
    ArrayType,
    StackMode,
    StackType,
    StructType,
    SymbolKind,
    SymbolType,
    TupleType,
    Type,
)

BAR_WIDTH = 52
VALUE_STACK_INDENT = 8  # get_stack(..., 8) for values
KEY_STACK_INDENT = 4    # MapKey::argument_value for stack keys

# ksym, usym, ntop and stack values end the entry themselves (a stack ends in
# "\n"), so 0.17's text output joins such maps' entries with nothing at all:
# "@k[1]: do_nanosleep@k[2]: vfs_read".
_GLUED_SYMBOLS = frozenset({SymbolKind.KSYM, SymbolKind.USYM, SymbolKind.FUNC, SymbolKind.INET})


def normalise_div(div: int) -> int:
    """print()'s div as 0.17 uses it: a uint32_t, and 0 means 1."""
    return (div & 0xFFFFFFFF) or 1


def is_glued(m: MapData) -> bool:
    t = m.value_type
    if t is not None:
        return isinstance(t, StackType) or (
            isinstance(t, SymbolType) and t.kind in _GLUED_SYMBOLS)
    return isinstance(m.first_value(), Stack)


def element_types(t: Type | None, n: int) -> list[Type | None]:
    if isinstance(t, TupleType) and len(t.elements) == n:
        return list(t.elements)
    return [None] * n


def field_type(t: Type | None, name: str) -> Type | None:
    if isinstance(t, StructType) and t.fields is not None:
        f = t.field(name)
        return f.type if f is not None else None
    return None


def stack_text(s: Stack, indent: int) -> str:
    """0.17's get_stack(): a leading newline, then one line per frame."""
    if s.missing:
        return ""
    if s.mode is StackMode.PERF:
        return "\n" + "".join(f"\t{f}\n" for f in s.frames)
    pad = " " * indent
    return "\n" + "".join(f"{pad}{f}\n" for f in s.frames)


# --------------------------------------------------------------------------
# Maps held as Columns
# --------------------------------------------------------------------------


# What column_rows() says the value columns are.
INT_VALUES, STR_VALUES, STATS_VALUES = "int", "str", "stats"


def column_rows(m: MapData, top: int, div: int) -> tuple[int, list[Sequence[object]], tuple[str, ...], str] | None:
    """A map held as Columns, ready for the fast formatters: (entries,
    columns, key kinds, value kind), each column in print order: the key
    columns, then the value as value_str() prints it -- INT_VALUES, one
    column of integers (divided by print()'s ``div``; avg's average);
    STR_VALUES, one of strings (unquoted); STATS_VALUES, three: count,
    average and total (div ignored, as in 0.17).  None when the general
    path must print the map: no columns, an order that column_order() does
    not give, glued entries, or no entries (a blank line, cheap)."""
    idx = order.column_order(m, top)
    if not idx or is_glued(m):
        return None
    cols = m.columns
    assert cols is not None
    kind = STATS_VALUES if cols.wrap is Stats else STR_VALUES if cols.value_kind == STR else INT_VALUES
    if cols.counts is None:
        values: list[list] = [cols.values]
    else:
        averages = cols.averages()
        values = [cols.counts, averages, cols.values] if kind == STATS_VALUES else [averages]
    n = len(idx)
    if n == 1:
        i = idx[0]
        columns: list[Sequence[object]] = [[c[i]] for c in (*cols.keys, *values)]
    else:
        pick = itemgetter(*idx)  # one C call per column instead of a Python loop
        columns = [pick(c) for c in (*cols.keys, *values)]
    div = normalise_div(div)
    if div != 1 and kind == INT_VALUES:
        columns[-1] = [c_div(v, div) for v in columns[-1]]  # type: ignore[arg-type]
    return n, columns, cols.kinds, kind


def interleave(columns: Sequence[Sequence[object]], n: int) -> tuple[object, ...]:
    """Row-major arguments for a ``%`` template repeated ``n`` times: the
    first element of every column, then the second..."""
    w = len(columns)
    args: list[object] = [None] * (n * w)
    for j, col in enumerate(columns):
        args[j::w] = col
    return tuple(args)


def int_or_str_spec(kinds: Sequence[str]) -> list[str]:
    """The ``%`` conversion of each key component: ``%d`` prints an int as
    str(int(c)) does, ``%s`` a string as is."""
    return ["%d" if k == INT else "%s" for k in kinds]


# --------------------------------------------------------------------------
# hist/lhist tables
# --------------------------------------------------------------------------


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _int_to_f32(n: int) -> float:
    """C's integer-to-float conversion (round to nearest, ties to even), done
    exactly: going through a double first could round twice."""
    if n < 0:
        return -_int_to_f32(-n)
    if n < 1 << 24:
        return float(n)
    shift = n.bit_length() - 24
    q, r = divmod(n, 1 << shift)
    half = 1 << (shift - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return float(q << shift)


def bar_width(count: int, max_value: int) -> int:
    """``int bar_width = values.at(i)/(float)max_value*max_width;`` -- in
    single precision, which matters: 15 of 26 gives 30 '@', not 29."""
    q = _f32(_int_to_f32(count) / _int_to_f32(max_value))
    return int(_f32(q * BAR_WIDTH))


def hist_prepare(values: Sequence[int]) -> tuple[int, int, int]:
    """0.17's hist_prepare: (min_index, max_index, max_value) over the buckets
    with a positive count, counts read as a C ``int``."""
    min_index = max_index = -1
    max_value = 0
    for i, c in enumerate(values):
        v = to_s32(c)
        if v > 0:
            if min_index == -1:
                min_index = i
            max_index = i
        if v > max_value:
            max_value = v
    return min_index, max_index, max_value


def lhist_params(h: LHist) -> tuple[int, int, int, int]:
    """(min, max, step, buckets) as 0.17's printer holds them: C ``int``s."""
    lo, hi, step = to_s32(h.lo), to_s32(h.hi), to_s32(h.step)
    return lo, hi, step, c_div(to_s32(hi - lo), step)


def lhist_prepare(values: Sequence[int], buckets: int) -> tuple[int, int, int, int]:
    """0.17's lhist_prepare: (max_index, max_value, start, end).  Leading and
    trailing empty buckets are trimmed; only slots 0..buckets+1 are shown."""
    max_index = -1
    max_value = 0
    for i, c in enumerate(values):
        v = to_s32(c)
        if v != 0:
            max_index = i
        if v > max_value:
            max_value = v
    start, end = -1, 0
    for i in range(0, buckets + 2):
        if i < len(values) and values[i] > 0:
            if start == -1:
                start = i
            end = i
    return max_index, max_value, max(start, 0), end


def hist_index_label(power: int) -> str:
    for limit, suffix in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if power >= limit:
            return f"{1 << (power - limit)}{suffix}"
    return str(1 << power)


def lhist_index_label(number: int) -> str:
    kilo, mega = 1024, 1048576
    if number == 0:
        return "0"
    if _c_mod(number, mega) == 0:
        return f"{c_div(number, mega)}M"
    if _c_mod(number, kilo) == 0:
        return f"{c_div(number, kilo)}K"
    return str(number)


def _c_mod(a: int, b: int) -> int:
    return a - c_div(a, b) * b


# --------------------------------------------------------------------------
# The shared renderer
# --------------------------------------------------------------------------


class Renderer:
    """0.17's Output: value rendering and map layout, with format hooks."""

    # ---- hooks the formats override ------------------------------------

    def quote(self, text: str, t: Type | None, v: Value) -> str:
        return text

    def tuple_str(self, elems: list[str]) -> str:
        raise NotImplementedError

    def field_str(self, name: str, value: str) -> str:
        raise NotImplementedError

    def record_str(self, elems: list[str]) -> str:
        raise NotImplementedError

    def stats_str(self, count: int, average: int, total: int) -> str:
        raise NotImplementedError

    def hist_str(self, h: Hist, div: int) -> str:
        raise NotImplementedError

    def lhist_str(self, h: LHist) -> str:
        raise NotImplementedError

    def map_key_str(self, m: MapData, key: Key) -> str:
        raise NotImplementedError

    def keyval_str(self, cat: str, key: str, value: str) -> str:
        raise NotImplementedError

    def elem_delim(self, m: MapData) -> str:
        raise NotImplementedError

    # ---- values ---------------------------------------------------------

    def value_str(self, v: Value, t: Type | None = None, div: int = 1) -> str:
        """Output::value_to_str: one value, with print()'s div applied to the
        integers in it (recursively, as 0.17 does for tuples)."""
        if isinstance(v, bool):
            return str(c_div(int(v), div))
        if isinstance(v, int):
            return str(c_div(v, div))
        if isinstance(v, (Count, Sum, Min, Max)):
            return str(c_div(v.n, div))
        if isinstance(v, Avg):
            return str(c_div(v.average, div))
        if isinstance(v, Stats):
            return self.stats_str(v.count, v.average, v.total)  # 0.17 ignores div here
        if isinstance(v, Hist):
            return self.hist_str(v, div)
        if isinstance(v, LHist):
            return self.lhist_str(v)  # and here
        if isinstance(v, tuple):
            types = element_types(t, len(v))
            return self.tuple_str([self.value_str(e, et, div) for e, et in zip(v, types)])
        if isinstance(v, list):
            et = t.element if isinstance(t, ArrayType) else None
            return "[" + ",".join(self.value_str(e, et, div) for e in v) + "]"
        if isinstance(v, Record):
            return self.record_str([self.field_str(n, self.value_str(fv, field_type(t, n), div))
                                    for n, fv in v.fields])
        return self.quote(self.plain_str(v, VALUE_STACK_INDENT), t, v)

    def plain_str(self, v: Value, indent: int) -> str:
        """Strings, symbols, stacks and buffers, unquoted."""
        if isinstance(v, str):
            return v
        if isinstance(v, Stack):
            return stack_text(v, indent)
        if isinstance(v, Buffer):
            return hex_format_buffer(v.data, "r")
        raise TypeError(f"not an output value: {v!r}")

    def key_component_str(self, c: Value) -> str:
        """MapKey::argument_value: one key component, never quoted."""
        if isinstance(c, int):
            return str(int(c))
        if isinstance(c, (str, Stack, Buffer)):
            return self.plain_str(c, KEY_STACK_INDENT)
        # 0.17 rejects tuples as keys; render anything else as a value would be.
        return self.value_str(c)

    # ---- maps -----------------------------------------------------------

    def map_body(self, m: MapData, top: int, div: int) -> str:
        """Output::map_to_str / map_hist_to_str / map_stats_to_str."""
        cat = order.category(m)
        div = normalise_div(div)
        # Aggregation values carry their own shape; other types guide quoting.
        t = None if isinstance(m.value_type, AggregationType) else m.value_type
        elems = []
        for key, value in order.ordered_entries(m, top):
            elems.append(self.keyval_str(cat, self.map_key_str(m, key), self.value_str(value, t, div)))
        return self.elem_delim(m).join(elems)
