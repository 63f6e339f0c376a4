"""The compiled printf fast paths print exactly what the general renderer
(bpftrace 0.17's rules) prints, for every conversion they accept: one
record at a time (compile_printf) and whole runs of records as they lie in
the ring buffer (compile_printf_run)."""

from __future__ import annotations

import random
import struct

import pytest

from pytrace.codegen.layout import EventLayout
from pytrace.runtime import fastprintf
from pytrace.runtime.fastprintf import compile_printf, compile_printf_run
from pytrace.semantic import formats
from pytrace.semantic import types as T

FORMATS = [
    "%d\n", "%d %u\n", "%x %X %o\n", "%ld %lu %lx\n", "%hd %hhu %hx\n", "%hhd %hu %hhx %ho\n",
    "%5d|%-5d|%05d\n", "%.3d %8.4x\n", "%08x|%-8X|%8o\n", "%s\n", "%-16s %6d\n", "%10.3s|\n", "%-10s|%10s|\n",
    "%.2s|%-6.1s|%4.4s|\n", "pid %d comm %s: 100%% done %d\n", "%lld %zu %jd %td\n", "no conversions\n",
    "%% %d\n", "%s %s %s\n", "%-0d\n", "%0d|%00d\n", "%c\n", "%c|%3c|%-3c|\n", "%s=%c%%%d\n", "%d%s",
    "é %s ü\n",
]
INTS = [0, 1, -1, 42, -100, 2**31 - 1, 2**31, 2**32 + 5, 2**63 - 1, -2**63, 255, 256 + 65, 65536, 123456789012,
        0xE9, 0x80, 10, 2**15, -2**15 - 1]
# NULs inside (C stops there), bytes after the NUL, no NUL at all, non-ASCII
# (padded and cut by bytes), bytes that are not UTF-8.
STRINGS = [b"", b"a", b"bash", b"python3", b"x" * 15, b"y" * 16, b"tab\tin", "é".encode(), "aéb".encode(),
           b"ab\0cd", b"\0xyz", b"\xff\xfe", "日本語".encode(), b"100%"]


def _event(fmt: str) -> tuple[EventLayout, formats.ParseResult]:
    parsed = formats.parse_format(fmt)
    ev = EventLayout(0, "printf", format=fmt)
    for c in parsed.conversions:
        ev.add(T.StringType(16) if c.conv == "s" else (T.U64 if c.conv in "uxXo" else T.I64))
    return ev, parsed


def _record(ev: EventLayout, values: list[object]) -> bytes:
    buf = bytearray(ev.total_size)
    struct.pack_into("<Q", buf, 0, ev.id)
    for arg, v in zip(ev.args, values):
        if isinstance(arg.type, T.StringType):
            data = v[: arg.type.length]  # type: ignore[index]
            buf[arg.offset:arg.offset + len(data)] = data  # type: ignore[arg-type]
        else:
            struct.pack_into("<Q", buf, arg.offset, v % 2**64)  # type: ignore[operator]
    return bytes(buf)


def _values(parsed: formats.ParseResult, rng: random.Random) -> list[object]:
    return [rng.choice(STRINGS) if c.conv == "s" else rng.choice(INTS) for c in parsed.conversions]


def _expected(parsed: formats.ParseResult, values: list[object]) -> bytes:
    """What 0.17 prints: strings as C reads them (up to the first NUL)."""
    general = [v.split(b"\0", 1)[0] if isinstance(v, bytes) else v for v in values]
    return formats.render_bytes(parsed.segments, general)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_path_equals_general_renderer(fmt: str) -> None:
    ev, parsed = _event(fmt)
    fast = compile_printf(ev, parsed)
    assert fast is not None
    rng = random.Random(fmt)
    for _ in range(300):
        values = _values(parsed, rng)
        got = fast(memoryview(_record(ev, values)))
        general = [v.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
                   for v in values]
        assert got == formats.render(parsed.segments, general), (fmt, values)


def _run(ev: EventLayout, records: list[bytes], header: int, stride: int) -> bytes:
    """Records as they lie in the ring: header, record, padding (junk)."""
    buf = bytearray()
    for rec in records:
        slot = struct.pack("<II", len(rec), 0xABCD) + rec
        buf += slot + b"\x5a" * (stride - len(slot))
    return bytes(buf)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("count", [1, 2, 3, 7, fastprintf.MAX_CHUNK, fastprintf.MAX_CHUNK + 1,
                                   2 * fastprintf.MAX_CHUNK + 77])
def test_run_equals_general_renderer_record_by_record(fmt: str, count: int) -> None:
    ev, parsed = _event(fmt)
    stride = (ev.total_size + 8 + 7) & ~7
    render = compile_printf_run(ev, parsed, 8, stride)
    assert render is not None
    rng = random.Random(f"{fmt}/{count}")
    values = [_values(parsed, rng) for _ in range(count)]
    run = memoryview(_run(ev, [_record(ev, v) for v in values], 8, stride))
    want = b"".join(_expected(parsed, v) for v in values)
    # The run is decoded as a whole: compare the bytes that reach the output.
    assert render(run).encode("utf-8", "surrogateescape") == want


def test_run_with_a_wider_stride_and_a_view_into_a_larger_buffer() -> None:
    ev, parsed = _event("%-6s|%5d|%c\n")
    stride = ev.total_size + 8 + 16  # records padded beyond their size
    render = compile_printf_run(ev, parsed, 8, stride)
    assert render is not None
    values: list[list[object]] = [[b"sh\0junk", -7, 65], [b"zsh", 2**40 + 3, 0], [b"fish", 9, 0x1E9]]
    blob = b"#" * 24 + _run(ev, [_record(ev, v) for v in values], 8, stride) + b"#" * 40
    view = memoryview(blob)[24:24 + 3 * stride]
    # %d reads the low 32 bits; %c of 0 prints nothing; %c of 0x1e9 the raw byte 0xe9.
    assert render(view) == "sh    |   -7|A\nzsh   |    3|\nfish  |    9|\udce9\n"


@pytest.mark.parametrize("fmt,types", [("%p\n", [T.I64]), ("%s\n", [T.SymbolType()]), ("%r\n", [T.BufferType(8)]),
                                       ("%d\n", [T.StringType(8)]), ("%s\n", [T.I64]), ("%.0d\n", [T.I64]),
                                       ("%05s\n", [T.StringType(8)]), ("%05.2d\n", [T.I64]),
                                       # 0.17 quirks formats.render knows: '%%' after the last conversion,
                                       # '%i' (not a 0.17 conversion).
                                       ("%d%%\n", [T.I64]), ("%i\n", [])])
def test_other_conversions_take_the_general_path(fmt: str, types: list[T.Type]) -> None:
    ev = EventLayout(0, "printf", format=fmt)
    for t in types:
        ev.add(t)
    parsed = formats.parse_format(fmt)
    assert compile_printf(ev, parsed) is None
    assert compile_printf_run(ev, parsed, 8, (ev.total_size + 15) & ~7) is None


def test_precision_zero_is_left_to_the_general_path() -> None:
    # C prints nothing for a zero with precision 0, Python's % prints "0".
    assert formats.render(formats.parse_format("[%.0d]").segments, [0]) == "[]"
