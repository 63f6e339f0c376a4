"""Compiled fast paths for printf events: one record, or a run of records.

``formats.render`` handles every quirk of bpftrace 0.17's printf but costs
tens of microseconds per event.  Most printf calls print integers, strings
and characters with plain conversions; for those, ``plan_printf`` works out
once per event id a ``PrintfPlan``: ``struct`` codes that read each argument
as the conversion sees it, and one *bytes* %-format for the whole line.

* Integers are cut to the C type the length modifier names (no modifier:
  32-bit ``int``) by the struct code itself: ``i4x`` reads the low 4 bytes
  of the 8-byte slot as a signed int, ``H6x`` the low 2 unsigned, and so on
  (records are little-endian), so no per-value arithmetic is needed.
* Formatting bytes, not str, gives C's semantics for %s: width pads and
  precision cuts by bytes, whatever the encoding.  The text is decoded once
  with ``surrogateescape``, as ``formats.render`` does, so the bytes
  written are the same.
* %c is looked up in a 256-entry table rendered by ``formats.render_bytes``
  itself (exact by construction, NUL quirks included).

``compile_printf`` turns a plan into a function of one record;
``compile_printf_run`` into one that renders a whole run of same-id records
lying back to back in the ring buffer, with one ``unpack_from`` and one
``%`` per chunk of up to ``MAX_CHUNK`` records instead of several Python
calls per record.  Anything else (symbols, stacks, %p, %r, flags Python's %
treats differently) gets no plan and takes the general path.
"""

from __future__ import annotations

import struct
from typing import Callable

from ..codegen.layout import EventLayout
from ..records import dataclass
from ..semantic import formats
from ..semantic import types as T

_BITS = {"": 32, "h": 16, "hh": 8, "l": 64, "ll": 64, "j": 64, "z": 64, "t": 64}
_INT_CONVS = frozenset("diuxXo")
# (bits, signed) -> struct code reading those low bits of a little-endian u64 slot.
_INT_CODES = {(8, True): "b7x", (8, False): "B7x", (16, True): "h6x", (16, False): "H6x",
              (32, True): "i4x", (32, False): "I4x", (64, True): "q", (64, False): "Q"}
# Records per unpack_from/% call in a run: chunks are powers of two up to this
# (a struct per size, built on first use), so a run of k records takes at most
# log2(MAX_CHUNK) + k / MAX_CHUNK calls.
MAX_CHUNK = 512

Renderer = Callable[[memoryview], "str | None"]
RunRenderer = Callable[[memoryview], str]


@dataclass(frozen=True)
class PrintfPlan:
    """How to print one record of a printf event with a single %-format."""

    codes: str                    # struct codes (no byte order) from the record's start
    size: int                     # bytes they cover (<= the record's size)
    fmt: bytes                    # the %-format of one record's line
    # Per unpacked value: "" (printed as unpacked), "s" (a string field: cut
    # at its first NUL) or "c" (index into the table in ``tables``).
    kinds: tuple[str, ...]
    tables: tuple[tuple[bytes, ...] | None, ...]

    @property
    def plain(self) -> bool:
        """Every value goes to the format as unpacked."""
        return not any(self.kinds)


def plan_printf(ev: EventLayout, parsed: formats.ParseResult) -> PrintfPlan | None:
    """The plan for this event's format and argument types, or None when a
    conversion needs the general renderer."""
    convs = [s for s in parsed.segments if isinstance(s, formats.Conversion)]
    if len(convs) != len(ev.args) or parsed.problems:
        return None
    pieces: list[bytes] = []
    codes: list[str] = []
    kinds: list[str] = []
    tables: list[tuple[bytes, ...] | None] = []
    pos = 0
    arg_iter = iter(ev.args)
    for seg in parsed.segments:
        if isinstance(seg, formats.Literal):
            pieces.append(seg.text.encode("utf-8", "surrogateescape").replace(b"%", b"%%"))
            continue
        assert isinstance(seg, formats.Conversion)
        arg = next(arg_iter)
        if seg.swallowed or seg.width_star or seg.conv not in _INT_CONVS | {"s", "c"}:
            return None
        if "0" in seg.flags and (seg.conv == "s" or seg.precision is not None):
            return None  # C ignores '0' here in ways Python does not
        if seg.conv in _INT_CONVS and seg.precision == 0:
            return None  # C prints nothing for 0 with precision 0; Python prints "0"
        if arg.offset < pos:
            return None
        if arg.offset > pos:
            codes.append(f"{arg.offset - pos}x")
        spec = "%" + seg.flags + (str(seg.width) if seg.width is not None else "") + \
            (f".{seg.precision}" if seg.precision is not None else "")
        t = arg.type
        if seg.conv == "s":
            if not isinstance(t, T.StringType):
                return None
            codes.append(f"{t.length}s")
            pos = arg.offset + t.length
            kinds.append("s")
            tables.append(None)
            pieces.append(spec.encode() + b"s")
            continue
        if not isinstance(t, T.IntType) or t.bits != 64:
            return None
        pos = arg.offset + 8
        if seg.conv == "c":
            # C prints the low byte; the table holds formats' own rendering
            # of each of the 256 values, width and NUL handling included.
            codes.append("B7x")
            kinds.append("c")
            tables.append(tuple(formats.render_bytes([seg], [i]) for i in range(256)))
            pieces.append(b"%s")
            continue
        codes.append(_INT_CODES[(_BITS[seg.length], seg.conv in "di")])
        kinds.append("")
        tables.append(None)
        pieces.append(spec.encode() + (b"d" if seg.conv in "diu" else seg.conv.encode()))
    return PrintfPlan("".join(codes), pos, b"".join(pieces), tuple(kinds), tuple(tables))


def _value_exprs(plan: PrintfPlan) -> list[str]:
    """Python expressions over the unpacked v0, v1... giving the % operands."""
    exprs = []
    for i, kind in enumerate(plan.kinds):
        if kind == "s":
            exprs.append(f"v{i}.partition(b'\\0')[0]")
        elif kind == "c":
            exprs.append(f"t{i}[v{i}]")
        else:
            exprs.append(f"v{i}")
    return exprs


def compile_printf(ev: EventLayout, parsed: formats.ParseResult) -> Renderer | None:
    """A function from a record to its printed text, or None when this
    format/argument combination needs the general renderer.  (The function
    returns text for every record; ``str | None`` is kept for callers that
    fall back on None.)"""
    plan = plan_printf(ev, parsed)
    if plan is None:
        return None
    exprs = _value_exprs(plan)
    names = "".join(f"v{i}, " for i in range(len(exprs)))
    # One straight-line function per event id (as namedtuple builds its
    # methods): no per-argument calls on the hot path.
    body = ["def render(rec):"]
    if exprs:
        body.append(f"    {names}= unpack(rec, 0)")
    body.append(f"    return (fmt % ({''.join(e + ', ' for e in exprs)})).decode('utf-8', 'surrogateescape')")
    namespace: dict[str, object] = {"unpack": struct.Struct("<" + plan.codes).unpack_from, "fmt": plan.fmt}
    namespace.update({f"t{i}": table for i, table in enumerate(plan.tables) if table is not None})
    exec("\n".join(body), namespace)  # noqa: S102 - code built from validated parts above
    return namespace["render"]  # type: ignore[return-value]


def compile_printf_run(ev: EventLayout, parsed: formats.ParseResult, header: int,
                       stride: int) -> RunRenderer | None:
    """A function from a run of this event's records to their text, or None
    when the event needs the general renderer.  The run it gets is a buffer
    of ``len(run) // stride`` slots of ``stride`` bytes, each a
    ``header``-byte ring-buffer header followed by one record."""
    plan = plan_printf(ev, parsed)
    if plan is None or header + plan.size > stride:
        return None
    return _RunPrinter(plan, header, stride).render


class _RunPrinter:
    """Renders runs of one event's records, chunk by chunk."""

    def __init__(self, plan: PrintfPlan, header: int, stride: int) -> None:
        self.plan = plan
        self.stride = stride
        self.slot = f"{header}x{plan.codes}{stride - header - plan.size}x"
        self.width = len(plan.kinds)
        # (value index, column transform) for values not printed as unpacked.
        self.columns: list[tuple[int, Callable[[tuple[object, ...]], list[object]]]] = []
        for i, (kind, table) in enumerate(zip(plan.kinds, plan.tables)):
            if kind == "s":
                self.columns.append((i, _cut_at_nul))
            elif kind == "c":
                assert table is not None
                self.columns.append((i, _lookup(table)))
        self.chunks: dict[int, tuple[Callable[[memoryview, int], tuple[object, ...]], bytes]] = {}

    def _chunk(self, n: int) -> tuple[Callable[[memoryview, int], tuple[object, ...]], bytes]:
        """The unpacker and the format of ``n`` records (built on first use)."""
        got = self.chunks.get(n)
        if got is None:
            got = self.chunks[n] = (struct.Struct("<" + self.slot * n).unpack_from, self.plan.fmt * n)
        return got

    def render(self, run: memoryview) -> str:
        stride, width, columns = self.stride, self.width, self.columns
        left = len(run) // stride
        pos = 0
        out: list[bytes] = []
        while left:
            n = MAX_CHUNK if left >= MAX_CHUNK else 1 << (left.bit_length() - 1)
            unpack, fmt = self._chunk(n)
            values = unpack(run, pos)
            if columns:
                # Column-wise: one transform call per column per chunk.
                fixed = list(values)
                for i, transform in columns:
                    fixed[i::width] = transform(values[i::width])
                values = tuple(fixed)
            out.append(fmt % values)
            pos += n * stride
            left -= n
        return b"".join(out).decode("utf-8", "surrogateescape")


def _cut_at_nul(strings: tuple[object, ...]) -> list[object]:
    """String fields as C reads them: up to the first NUL."""
    return [s.partition(b"\0")[0] for s in strings]  # type: ignore[attr-defined]


def _lookup(table: tuple[bytes, ...]) -> Callable[[tuple[object, ...]], list[object]]:
    get = table.__getitem__

    def column(values: tuple[object, ...]) -> list[object]:
        return list(map(get, values))  # type: ignore[arg-type]
    return column
