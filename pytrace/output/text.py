"""bpftrace 0.17's default text output: maps, print() values, and the messages.

This module owns the exact text of map dumps (at exit and for ``print(@m)`` /
``print(@m, top, div)``), of ``print(value)`` for non-map values, and of the
"Attaching"/"Lost" lines.  printf/time/cat/system text is the runtime's own
(see pytrace.semantic.formats); the text format adds nothing to it.

bpftrace 0.17's rules, each verified against /usr/bin/bpftrace (see
tests/kernel/test_output_oracle.py and tests/unit/test_output_text.py):

* A scalar map prints ``@x: 5``, a keyed one ``@x[k1, k2]: 5``; strings are
  printed raw (no quotes, no escaping: a tab or newline comes out as is).
  Order: see pytrace.output.order.
* A map ends with one newline, so consecutive count/sum/... maps have no
  blank line between them.  avg/stats maps end with an extra blank line.
  Each hist/lhist entry is ``@h[k]: `` (trailing space), a newline, the
  table, and a blank line.  An empty map prints a lone newline (two for
  avg/stats).
* ksym/usym/ntop/stack-valued maps join their entries with nothing, so
  ``@k[1]: do_nanosleep@k[2]: vfs_read`` is one line (stacks end in a
  newline themselves, so those look right).
* hist tables: one row per bucket from the first to the last non-empty one
  (inner empty buckets are shown), the label left-aligned in 16 columns, the
  count right-aligned in 8, then `` |`` + 52-wide bar + ``|``.  The bar is
  count / max * 52 in single-precision float, truncated.  Labels: ``(..., 0)``,
  ``[0]``, ``[1]``, then ``[2, 4)`` ... ``[512, 1K)``, ``[1K, 2K)``, ``[1M, 2M)``,
  ``[1G, 2G)``, ``[2G, 4G)``.  print()'s div divides the printed counts but not
  the bar.  lhist tables the same, labels ``(..., lo)``, ``[a, b)`` with
  K/M when exactly divisible by 1024/1048576, ``[hi, ...)``; div is ignored.
* stats: ``count 3, average 5, total 15`` (div and top ignored); avg prints
  total / count truncated toward zero (-15/2 is -7), then divided by div.
* Stacks: as values, a newline then ``        frame`` (8 spaces) lines; as
  keys, 4 spaces: ``@[\\n    frame\\n    frame\\n]: 3``.  perf mode: ``\\tframe``.
* tuples ``(1, abc, (2, c))``, arrays ``[1,2,3]``, records ``{ .a = 1, .b = 2 }``,
  buffers as ``%r`` (``a\\x01b``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Sequence

from pytrace.output import order
from pytrace.output.render import (
    BAR_WIDTH,
    INT_VALUES,
    STATS_VALUES,
    STR_VALUES,
    Renderer,
    bar_width,
    column_rows,
    hist_index_label,
    hist_prepare,
    int_or_str_spec,
    interleave,
    is_glued,
    lhist_index_label,
    lhist_params,
    lhist_prepare,
)
from pytrace.output.values import Hist, Key, LHist, MapData, Value, to_s32
from pytrace.semantic.types import Type


def _table_row(header: str, count: int, bar: int) -> str:
    return f"{header:<16}{count:>8} |{'@' * bar:<{BAR_WIDTH}}|\n"


class TextRenderer(Renderer):
    """0.17's TextOutput."""

    def tuple_str(self, elems: list[str]) -> str:
        return "(" + ", ".join(elems) + ")"

    def field_str(self, name: str, value: str) -> str:
        return f".{name} = {value}"

    def record_str(self, elems: list[str]) -> str:
        return "{ " + ", ".join(elems) + " }"

    def stats_str(self, count: int, average: int, total: int) -> str:
        return f"count {count}, average {average}, total {total}"

    def hist_str(self, h: Hist, div: int) -> str:
        values = h.slots()
        min_index, max_index, max_value = hist_prepare(values)
        if max_index == -1:
            return ""
        rows = []
        for i in range(min_index, max_index + 1):
            if i == 0:
                header = "(..., 0)"
            elif i == 1:
                header = "[0]"
            elif i == 2:
                header = "[1]"
            else:
                header = f"[{hist_index_label(i - 2)}, {hist_index_label(i - 1)})"
            rows.append(_table_row(header, values[i] // div, bar_width(values[i], max_value)))
        return "".join(rows)

    def lhist_str(self, h: LHist) -> str:
        lo, hi, step, buckets = lhist_params(h)
        values = h.slots()
        max_index, max_value, start, end = lhist_prepare(values, buckets)
        if max_index == -1:
            return ""
        rows = []
        for i in range(start, end + 1):
            if i == 0:
                header = f"(..., {lhist_index_label(lo)})"
            elif i == buckets + 1:
                header = f"[{lhist_index_label(hi)}, ...)"
            else:
                header = (f"[{lhist_index_label(to_s32((i - 1) * step + lo))}, "
                          f"{lhist_index_label(to_s32(i * step + lo))})")
            rows.append(_table_row(header, values[i], bar_width(values[i], max_value)))
        return "".join(rows)

    def map_key_str(self, m: MapData, key: Key) -> str:
        if not m.keyed:
            return m.name
        return m.name + "[" + ", ".join(self.key_component_str(c) for c in key) + "]"

    def keyval_str(self, cat: str, key: str, value: str) -> str:
        return key + ": " + ("\n" if cat == order.HIST else "") + value

    def elem_delim(self, m: MapData) -> str:
        return "" if is_glued(m) else "\n"


_TEXT = TextRenderer()  # stateless


def format_map(m: MapData, *, top: int = 0, div: int = 1) -> str:
    """A map as 0.17 prints it at exit or for ``print(@m, top, div)``."""
    fast = _format_columns(m, top, div)
    if fast is not None:
        return fast
    tail = "\n\n" if order.category(m) == order.STATS else "\n"
    return _TEXT.map_body(m, top, div) + tail


# The text of a value column_rows() gives, as a % conversion.
_VALUE_SPECS = MappingProxyType({INT_VALUES: "%d", STR_VALUES: "%s",
                                 STATS_VALUES: "count %d, average %d, total %d"})


def _format_columns(m: MapData, top: int, div: int) -> str | None:
    """format_map() of a map held as Columns, None where the general path
    must print it.  The lines are those of map_body(): ``@m[k1, k2]: v``
    each ending in the "\n" that joins them (the last one's is the map's
    tail, plus a blank line for avg/stats), made by one ``%`` over the
    repeated line template."""
    rows = column_rows(m, top, div)
    if rows is None:
        return None
    n, columns, kinds, values = rows
    name = m.name.replace("%", "%%")
    value = _VALUE_SPECS[values]
    line = f"{name}[{', '.join(int_or_str_spec(kinds))}]: {value}\n" if m.keyed else f"{name}: {value}\n"
    tail = "\n" if order.category(m) == order.STATS else ""  # format_map()'s extra blank line
    return (line * n) % interleave(columns, n) + tail


def format_maps_at_exit(maps: Sequence[MapData]) -> str:
    """Everything 0.17 prints after the last event when it exits: two newlines
    (printed even with no maps at all), then every map, ordered by name."""
    return "\n\n" + "".join(format_map(m) for m in order.sorted_maps(maps))


def value_str(v: Value, value_type: Type | None = None) -> str:
    """A value as 0.17 renders it inside other text (no trailing newline)."""
    return _TEXT.value_str(v, value_type)


def format_value(v: Value, value_type: Type | None = None) -> str:
    """``print(value)`` of a non-map value: the value and a newline.  A stack
    starts with its own newline, so ``print(kstack)`` shows an empty line,
    the frames, and another empty line."""
    return _TEXT.value_str(v, value_type) + "\n"


def format_lost(n: int) -> str:
    return f"Lost {n} events\n"


def format_attached(n: int) -> str:
    return f"Attaching {n} probe...\n" if n == 1 else f"Attaching {n} probes...\n"
