"""bpftrace 0.17's ``-f json`` output: one JSON-ish object per line.

This module owns every line 0.17 writes in JSON mode: maps, hists, stats,
print() values, printf/time/cat/system/join messages, attached probes and lost
events.  "JSON-ish" because 0.17 is not always valid JSON, and we copy it:

* Strings are escaped byte by byte with a *signed* char: ``"`` ``\\``
  ``\\n`` ``\\r`` ``\\t`` get backslash escapes, other bytes below 0x20 become
  ``\\u00XX``, and every byte >= 0x80 becomes ``\\uffffffXX`` (the sign-extended
  int in hex), so "é" is ``\\uffffffc3\\uffffffa9``.  DEL is left alone.
* strftime(), strerror() and macaddr() values are *not* quoted
  (``{"@me": {"1": No such file or directory}}``): 0.17's is_quoted_type()
  lists only stacks, ksym, usym, ntop, username, strings, buffers, probe and
  cgroup_path.
* Line shapes (``, `` between object members, ``,`` inside arrays/tuples)::

    {"type": "map", "data": {"@x": 5}}
    {"type": "map", "data": {"@x": {"1": 5, "abc,2": 7}}}   keys joined by ","
    {"type": "map", "data": {"@t": [1,"str"]}}              tuples as arrays
    {"type": "hist", "data": {"@h": [{"max": -1, "count": 1}, {"min": 0, "max": 0, "count": 1}, ...]}}
    {"type": "hist", "data": {"@l": [{"max": -1, "count": 1}, {"min": 0, "max": 9, "count": 2}, {"min": 100, "count": 1}]}}
    {"type": "stats", "data": {"@s": {"count": 2, "average": 7, "total": 15}}}
    {"type": "stats", "data": {"@a": {"1": -7}}}             avg maps are "stats" too
    {"type": "value", "data": [1,"two"]}                     print(value)
    {"type": "printf", "data": "x\\n"}
    {"type": "attached_probes", "data": {"probes": 1}}
    {"type": "lost_events", "data": {"events": 3}}

* An empty map prints nothing; a hist whose buckets are all zero is ``[]``.
  The hist/lhist buckets shown, the entry order and top/div are those of the
  text format (lhist's "below" bucket has only ``max`` = lo - 1, its "above"
  bucket only ``min`` = hi).
* At exit 0.17 prints two bare newlines before the maps, in JSON mode too.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Sequence

from pytrace.output import order
from pytrace.output.render import (
    STATS_VALUES,
    STR_VALUES,
    Renderer,
    column_rows,
    hist_prepare,
    int_or_str_spec,
    interleave,
    lhist_params,
    lhist_prepare,
)
from pytrace.output.values import (
    STR,
    Buffer,
    Hist,
    Key,
    LHist,
    MapData,
    Stack,
    Value,
    encode_output,
    to_s32,
)
from pytrace.semantic.types import (
    AggregationType,
    BufferType,
    StackType,
    StringType,
    SymbolKind,
    SymbolType,
    Type,
)

# The symbol kinds 0.17's is_quoted_type() quotes (func is a ksym/usym there).
_QUOTED_SYMBOLS = frozenset({
    SymbolKind.KSYM, SymbolKind.USYM, SymbolKind.FUNC, SymbolKind.INET,
    SymbolKind.USERNAME, SymbolKind.PROBE, SymbolKind.CGROUP_PATH,
})

_ESCAPES = MappingProxyType(
    {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def json_escape(text: str) -> str:
    """0.17's JsonOutput::json_escape, byte for byte (see the module doc)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text  # printable ASCII other than " and \ is left alone: most keys
    out = []
    for b in encode_output(text):
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif b <= 0x1F:
            out.append(f"\\u{b:04x}")
        elif b >= 0x80:
            out.append(f"\\u{b | 0xFFFFFF00:x}")  # (int)(signed char) b, printed as hex
        else:
            out.append(chr(b))
    return "".join(out)


def _is_quoted(t: Type | None, v: Value) -> bool:
    if t is None:
        return isinstance(v, (str, Stack, Buffer))
    if isinstance(t, SymbolType):
        return t.kind in _QUOTED_SYMBOLS
    return isinstance(t, (StackType, StringType, BufferType))


class JsonRenderer(Renderer):
    """0.17's JsonOutput."""

    def quote(self, text: str, t: Type | None, v: Value) -> str:
        return f'"{json_escape(text)}"' if _is_quoted(t, v) else text

    def tuple_str(self, elems: list[str]) -> str:
        return "[" + ",".join(elems) + "]"

    def field_str(self, name: str, value: str) -> str:
        return f'"{name}": {value}'

    def record_str(self, elems: list[str]) -> str:
        return "{ " + ", ".join(elems) + " }"

    def stats_str(self, count: int, average: int, total: int) -> str:
        return f'{{"count": {count}, "average": {average}, "total": {total}}}'

    def hist_str(self, h: Hist, div: int) -> str:
        values = h.slots()
        min_index, max_index, _ = hist_prepare(values)
        if max_index == -1:
            return "[]"
        items = []
        for i in range(min_index, max_index + 1):
            if i == 0:
                bounds = '"max": -1, '
            elif i == 1:
                bounds = '"min": 0, "max": 0, '
            elif i == 2:
                bounds = '"min": 1, "max": 1, '
            else:
                # 0.17 computes these as C ints (``1 << (i - 2)``), and x86
                # masks the shift count: the [2G, 4G) bucket (index 33) comes
                # out as min -2147483648, max 0.
                low = to_s32(1 << ((i - 2) % 32))
                high = to_s32((1 << ((i - 1) % 32)) - 1)
                bounds = f'"min": {low}, "max": {high}, '
            items.append(f'{{{bounds}"count": {values[i] // div}}}')
        return "[" + ", ".join(items) + "]"

    def lhist_str(self, h: LHist) -> str:
        lo, hi, step, buckets = lhist_params(h)
        values = h.slots()
        max_index, _, start, end = lhist_prepare(values, buckets)
        if max_index == -1:
            return "[]"
        items = []
        for i in range(start, end + 1):
            if i == 0:
                bounds = f'"max": {to_s32(lo - 1)}, '
            elif i == buckets + 1:
                bounds = f'"min": {hi}, '
            else:
                low = to_s32((i - 1) * step + lo)
                high = to_s32(i * step + lo - 1)
                bounds = f'"min": {low}, "max": {high}, '
            items.append(f'{{{bounds}"count": {values[i]}}}')
        return "[" + ", ".join(items) + "]"

    def map_key_str(self, m: MapData, key: Key) -> str:
        if not key:
            return ""
        return '"' + json_escape(",".join(self.key_component_str(c) for c in key)) + '"'

    def keyval_str(self, cat: str, key: str, value: str) -> str:
        return f"{key}: {value}" if key else value

    def elem_delim(self, m: MapData) -> str:
        return ", "


_JSON = JsonRenderer()  # stateless


def format_map(m: MapData, *, top: int = 0, div: int = 1) -> str:
    """The JSON line for a map (print() or exit); "" for an empty map."""
    if not m.entry_count():
        return ""
    body = _columns_body(m, top, div)
    if body is not None:
        return f'{{"type": "{order.category(m)}", "data": {{"{json_escape(m.name)}": {body}}}}}\n'
    kind = order.category(m)
    body = _JSON.map_body(m, top, div)
    if m.keyed:
        body = "{" + body + "}"
    return f'{{"type": "{kind}", "data": {{"{json_escape(m.name)}": {body}}}}}\n'


def _columns_body(m: MapData, top: int, div: int) -> str | None:
    """The data of a map held as Columns, None where the general path must
    print it: the entries of map_body() made by one ``%`` over the repeated entry
    template.  A key's components are joined by "," and escaped as one
    string; escaping works byte by byte, so escaping each string component
    alone comes to the same."""
    rows = column_rows(m, top, div)
    if rows is None:
        return None
    n, columns, kinds, values = rows
    if values == STATS_VALUES:
        value = '{"count": %d, "average": %d, "total": %d}'
    elif values == STR_VALUES:
        t = None if isinstance(m.value_type, AggregationType) else m.value_type
        if not _is_quoted(t, ""):
            return None  # an unquoted symbol: the general path knows those
        columns[-1] = [json_escape(s) for s in columns[-1]]  # type: ignore[union-attr]
        value = '"%s"'
    else:
        value = "%d"
    if not m.keyed:
        return ", ".join([value] * n) % interleave(columns, n)
    for j, kind in enumerate(kinds):
        if kind == STR:
            columns[j] = [json_escape(s) for s in columns[j]]  # type: ignore[union-attr]
    entry = '"' + ",".join(int_or_str_spec(kinds)) + '": ' + value
    return "{" + ", ".join([entry] * n) % interleave(columns, n) + "}"


def format_maps_at_exit(maps: Sequence[MapData]) -> str:
    """What 0.17 prints at exit in JSON mode: two bare newlines, then a line
    per non-empty map, ordered by name."""
    return "\n\n" + "".join(format_map(m) for m in order.sorted_maps(maps))


def value_str(v: Value, value_type: Type | None = None) -> str:
    """A value as JSON (strings quoted per 0.17's rules), no newline."""
    return _JSON.value_str(v, value_type)


def format_value(v: Value, value_type: Type | None = None) -> str:
    """``print(value)`` of a non-map value."""
    return f'{{"type": "value", "data": {_JSON.value_str(v, value_type)}}}\n'


# The message types 0.17's JSON output knows, for format_message().
MESSAGE_TYPES = frozenset({"printf", "time", "cat", "join", "syscall"})


def format_message(kind: str, text: str) -> str:
    """A printf/time/cat/join/syscall (system()) line: the text as a JSON
    string.  ``text`` is exactly what the text format would print."""
    if kind not in MESSAGE_TYPES:
        raise ValueError(f"unknown JSON message type {kind!r}")
    return f'{{"type": "{kind}", "data": "{json_escape(text)}"}}\n'


def format_lost(n: int) -> str:
    return f'{{"type": "lost_events", "data": {{"events": {n}}}}}\n'


def format_attached(n: int) -> str:
    return f'{{"type": "attached_probes", "data": {{"probes": {n}}}}}\n'
