"""A compiled fast path for printf events.

``formats.render`` handles every quirk of bpftrace 0.17's printf but costs
tens of microseconds per event.  Most printf calls print integers and strings
with plain conversions; for those, ``compile_printf`` builds once per event id
a ``struct`` unpacker and a Python %-format string that produce the same text
(integers cut to the C type the length modifier names, as 0.17 does: no
modifier means 32-bit ``int``), so a record becomes text in about two
microseconds.  Anything else (symbols, stacks, %c, %p, %r, flags Python's %
treats differently) returns None and takes the general path.
"""

from __future__ import annotations

import struct
from typing import Callable

from ..codegen.layout import EventLayout
from ..semantic import formats
from ..semantic import types as T

_BITS = {"": 32, "h": 16, "hh": 8, "l": 64, "ll": 64, "j": 64, "z": 64, "t": 64}
_INT_CONVS = frozenset("diuxXo")


def _int_fixer(length: str, signed: bool) -> Callable[[int], int]:
    bits = _BITS[length]
    mask = (1 << bits) - 1
    top = 1 << (bits - 1)
    if signed:
        return lambda v: ((v & mask) ^ top) - top
    return lambda v: v & mask


def compile_printf(ev: EventLayout, parsed: formats.ParseResult) -> Callable[[memoryview], str | None] | None:
    """A function from a record to its printed text, or None when this
    format/argument combination needs the general renderer.  The function
    itself returns None for a record it cannot render exactly (C pads and
    cuts %s by bytes, Python by characters: they agree on ASCII only)."""
    convs = [s for s in parsed.segments if isinstance(s, formats.Conversion)]
    if len(convs) != len(ev.args) or parsed.problems:
        return None
    pieces: list[str] = []
    layout = ["<"]
    pos = 0
    fixers: list[Callable[[bytes | int], object]] = []
    sized_strings = False
    arg_iter = iter(ev.args)
    for seg in parsed.segments:
        if isinstance(seg, formats.Literal):
            pieces.append(seg.text.replace("%", "%%"))
            continue
        assert isinstance(seg, formats.Conversion)
        arg = next(arg_iter)
        if seg.swallowed or seg.width_star or seg.conv not in _INT_CONVS | {"s"}:
            return None
        if "0" in seg.flags and (seg.conv == "s" or seg.precision is not None):
            return None  # C ignores '0' here in ways Python does not
        if arg.offset < pos:
            return None
        layout.append(f"{arg.offset - pos}x" if arg.offset > pos else "")
        spec = "%" + seg.flags + (str(seg.width) if seg.width is not None else "") + \
            (f".{seg.precision}" if seg.precision is not None else "")
        t = arg.type
        if seg.conv == "s":
            if not isinstance(t, T.StringType):
                return None
            layout.append(f"{t.length}s")
            pos = arg.offset + t.length
            fixers.append(_string)
            pieces.append(spec + "s")
            sized_strings = sized_strings or seg.width is not None or seg.precision is not None
        else:
            if not isinstance(t, T.IntType) or t.bits != 64:
                return None
            layout.append("q" if t.signed else "Q")
            pos = arg.offset + 8
            fixers.append(_int_fixer(seg.length, seg.conv in "di"))  # type: ignore[arg-type]
            pieces.append(spec + ("d" if seg.conv in "diu" else seg.conv))
    unpack = struct.Struct("".join(layout)).unpack_from
    fmt = "".join(pieces)
    start = 0

    def render(rec: memoryview) -> str | None:
        return fmt % tuple([f(v) for f, v in zip(fixers, unpack(rec, start))])

    def render_checked(rec: memoryview) -> str | None:
        values = [f(v) for f, v in zip(fixers, unpack(rec, start))]
        for v in values:
            if isinstance(v, str) and not v.isascii():
                return None
        return fmt % tuple(values)

    return render_checked if sized_strings else render


def _string(b: bytes) -> str:
    nul = b.find(b"\0")
    return (b if nul < 0 else b[:nul]).decode("utf-8", "surrogateescape")
