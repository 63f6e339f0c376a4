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
    exprs: list[str] = []       # Python expressions over the unpacked values v0, v1...
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
            exprs.append(f"_string(v{len(exprs)})")
            pieces.append(spec + "s")
            sized_strings = sized_strings or seg.width is not None or seg.precision is not None
        else:
            if not isinstance(t, T.IntType) or t.bits != 64:
                return None
            signed = seg.conv in "di"
            bits = _BITS[seg.length]
            # Unpack as the conversion reads it; narrower C types are masked
            # (and sign-folded) in the generated expression.
            layout.append("q" if signed else "Q")
            pos = arg.offset + 8
            v = f"v{len(exprs)}"
            if bits == 64:
                exprs.append(v)
            elif signed:
                top = 1 << (bits - 1)
                exprs.append(f"((({v} & {(1 << bits) - 1}) ^ {top}) - {top})")
            else:
                exprs.append(f"({v} & {(1 << bits) - 1})")
            pieces.append(spec + ("d" if seg.conv in "diu" else seg.conv))
    unpack = struct.Struct("".join(layout)).unpack_from
    fmt = "".join(pieces)
    # One straight-line function per event id (as namedtuple builds its
    # methods): no per-argument calls on the hot path.
    names = ", ".join(f"v{i}" for i in range(len(exprs)))
    values = ", ".join(exprs)
    body = ["def render(rec):"]
    if exprs:
        body.append(f"    {names}, = unpack(rec, 0)")
    if sized_strings:
        body.append(f"    values = ({values},)")
        body.append("    for v in values:")
        body.append("        if v.__class__ is str and not v.isascii():")
        body.append("            return None")
        body.append("    return fmt % values")
    else:
        body.append(f"    return fmt % ({values}{',' if exprs else ''})")
    namespace = {"unpack": unpack, "fmt": fmt, "_string": _string}
    exec("\n".join(body), namespace)  # noqa: S102 - code built from validated parts above
    return namespace["render"]  # type: ignore[return-value]


def _string(b: bytes) -> str:
    nul = b.find(b"\0")
    return (b if nul < 0 else b[:nul]).decode("utf-8", "surrogateescape")
