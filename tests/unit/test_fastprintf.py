"""The compiled printf fast path prints exactly what the general renderer
(bpftrace 0.17's rules) prints, for every conversion it accepts."""

from __future__ import annotations

import random
import struct

import pytest

from pytrace.codegen.layout import EventLayout
from pytrace.runtime.fastprintf import compile_printf
from pytrace.semantic import formats
from pytrace.semantic import types as T

FORMATS = [
    "%d\n", "%d %u\n", "%x %X %o\n", "%ld %lu %lx\n", "%hd %hhu %hx\n", "%5d|%-5d|%05d\n",
    "%.3d %8.4x\n", "%s\n", "%-16s %6d\n", "%10.3s|\n", "pid %d comm %s: 100%% done %d\n",
    "%lld %zu %jd %td\n", "no conversions\n", "%s %s %s\n", "%-0d\n",
]
INTS = [0, 1, -1, 42, -100, 2**31 - 1, 2**31, 2**32 + 5, 2**63 - 1, -2**63, 255, 65536, 123456789012]
STRINGS = [b"", b"a", b"bash", b"python3", b"x" * 15, b"tab\tin", "é".encode()]


def _record(ev: EventLayout, values: list[object]) -> bytes:
    buf = bytearray(ev.total_size)
    struct.pack_into("<Q", buf, 0, ev.id)
    for arg, v in zip(ev.args, values):
        if isinstance(arg.type, T.StringType):
            data = v[: arg.type.length - 1]  # type: ignore[index]
            buf[arg.offset:arg.offset + len(data)] = data  # type: ignore[arg-type]
        else:
            struct.pack_into("<q" if arg.type.signed else "<Q", buf, arg.offset,  # type: ignore[attr-defined]
                             v if arg.type.signed or v >= 0 else v + 2**64)  # type: ignore[operator]
    return bytes(buf)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_path_equals_general_renderer(fmt: str) -> None:
    parsed = formats.parse_format(fmt)
    convs = [s for s in parsed.segments if isinstance(s, formats.Conversion)]
    ev = EventLayout(0, "printf", format=fmt)
    for c in convs:
        ev.add(T.StringType(16) if c.conv == "s" else T.I64)
    fast = compile_printf(ev, parsed)
    assert fast is not None
    rng = random.Random(fmt)
    for _ in range(200):
        values: list[object] = [rng.choice(STRINGS) if c.conv == "s" else rng.choice(INTS) for c in convs]
        rec = memoryview(_record(ev, values))
        got = fast(rec)
        general = [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in values]
        want = formats.render(parsed.segments, general)
        if got is None:  # declined (non-ASCII with a width): the general path prints it
            assert any(isinstance(v, bytes) and not v.isascii() for v in values)
            continue
        assert got == want, (fmt, values)


@pytest.mark.parametrize("fmt,types", [("%c\n", [T.I64]), ("%p\n", [T.I64]), ("%s\n", [T.SymbolType()]),
                                       ("%r\n", [T.BufferType(8)])])
def test_other_conversions_take_the_general_path(fmt: str, types: list[T.Type]) -> None:
    ev = EventLayout(0, "printf", format=fmt)
    for t in types:
        ev.add(t)
    assert compile_printf(ev, formats.parse_format(fmt)) is None
