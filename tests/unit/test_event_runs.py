"""EventHandler over a fake ring: printing runs of records at once gives the
same output, in the same order relative to other events (print, clear,
exit, join), as the per-record fast path and as the general renderer."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest

from pytrace.codegen.layout import EventLayout, Layout
from pytrace.runtime import events as E
from pytrace.runtime.decode import Resolver
from pytrace.runtime.events import EventHandler, EventSink
from pytrace.semantic import types as T
from tests.unit.fake_ring import FakeRing

PRINTF_FORMATS = [
    ("%d %d\n", [T.U64, T.I64]),
    ("%u|%x|%X|%o\n", [T.U64, T.U64, T.U64, T.U64]),
    ("%5d|%-5d|%08x|%% %hd %hhu\n", [T.I64, T.I64, T.U64, T.I64, T.U64]),
    ("%s\n", [T.StringType(16)]),
    ("[%-10s|%10s|%.3s]\n", [T.StringType(16), T.StringType(8), T.StringType(16)]),
    ("%c|%3c|%-3c|\n", [T.I64, T.I64, T.I64]),
    ("tick\n", []),
    ("%s=%d %c\n", [T.StringType(12), T.I64, T.I64]),
    ("%p\n", [T.U64]),  # no fast path: always the general renderer
]
INTS = [0, 1, -1, 42, 2**31, 2**32 + 7, -2**63, 0xE9, 321, 65]
STRINGS = [b"", b"bash", b"x" * 16, "é".encode(), "aéé".encode(), b"ab\0cd", b"\xff", b"100%"]

Call = tuple[str, object]


def build_layout() -> tuple[Layout, list[EventLayout]]:
    layout = Layout()
    printfs = []
    for fmt, types in PRINTF_FORMATS:
        ev = layout.event("printf", format=fmt)
        for t in types:
            ev.add(t)
        printfs.append(ev)
    layout.event("print", map_name="@m", extra={"top": 3, "div": 1})
    layout.event("clear", map_name="@m")
    layout.event("join", extra={"count": 3, "len": 8, "sep": ","})
    layout.event("exit")
    return layout, printfs


def records(layout: Layout, seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    while len(out) < n:
        ev = rng.choice(layout.events)
        for _ in range(rng.choice([1, 1, 2, 5, 30, 200]) if ev.kind == "printf" else 1):
            buf = bytearray(ev.total_size if ev.kind != "join" else 8 + 3 * 8)
            struct.pack_into("<Q", buf, 0, ev.id)
            if ev.kind == "join":
                for i in range(3):
                    word = rng.choice([b"a", b"bc", b"", b"defgh"])
                    buf[8 + 8 * i:8 + 8 * i + len(word)] = word
            for arg in ev.args:
                if isinstance(arg.type, T.StringType):
                    s = rng.choice(STRINGS)[:arg.type.length]
                    buf[arg.offset:arg.offset + len(s)] = s
                else:
                    struct.pack_into("<Q", buf, arg.offset, rng.choice(INTS) % 2**64)
            out.append(bytes(buf))
    return out


def handler_and_calls(layout: Layout) -> tuple[EventHandler, list[Call]]:
    calls: list[Call] = []
    sink = EventSink(write=lambda s: calls.append(("text", s)),
                     on_exit=lambda code: calls.append(("exit", code)),
                     on_print_map=lambda name, top, div: calls.append(("print", (name, top, div))),
                     on_clear=lambda name, zero: calls.append(("clear", (name, zero))),
                     on_print_value=lambda v: calls.append(("value", v)),
                     on_error=lambda message: calls.append(("error", message)))
    return EventHandler(layout, Resolver(layout), sink), calls


def merged(calls: list[Call]) -> list[Call]:
    """Texts written back to back joined, as bytes: writes are batched
    differently by each path, and a run is decoded as a whole."""
    out: list[Call] = []
    for kind, what in calls:
        if kind == "text":
            data = str(what).encode("utf-8", "surrogateescape")
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + data)  # type: ignore[operator]
            else:
                out.append(("text", data))
        else:
            out.append((kind, what))
    return out


def run_through_ring(recs: list[bytes], handler: EventHandler, callback: object, start: int) -> None:
    ring = FakeRing(1 << 13, start)
    rb = ring.consumer_of(callback)
    for rec in recs:
        while True:
            try:
                ring.put(rec)
                break
            except OverflowError:
                rb.drain(limit=500)
                handler.flush()
    while rb.drain(limit=500):
        handler.flush()
    handler.flush()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("start", [0, (1 << 13) - 64])
def test_runs_print_what_single_records_and_the_general_path_print(seed: int, start: int) -> None:
    layout, _ = build_layout()
    recs = records(layout, seed, 2500)

    batched, batched_calls = handler_and_calls(layout)
    run_through_ring(recs, batched, batched, start)

    single, single_calls = handler_and_calls(layout)
    run_through_ring(recs, single, lambda v: single(v), start)  # no run_renderer: record by record

    general, general_calls = handler_and_calls(layout)
    for ev in layout.events:
        general._fast[ev.id] = None  # no compiled renderer: formats.render for every printf
    run_through_ring(recs, general, lambda v: general(v), start)

    assert merged(batched_calls) == merged(single_calls) == merged(general_calls)
    assert batched.count == single.count == general.count == len(recs)
    assert not batched.errors and not [c for c in batched_calls if c[0] == "error"]
    # The runs were really taken (not only the per-record path).
    assert any(run is not None for run in batched._runs.values())


def test_a_failing_run_is_printed_record_by_record(monkeypatch: pytest.MonkeyPatch) -> None:
    layout, _ = build_layout()
    real = E.compile_printf_run

    def flaky(*args: object) -> Callable[[memoryview], str] | None:
        render = real(*args)  # type: ignore[arg-type]
        if render is None:
            return None
        state = {"calls": 0}

        def once_broken(view: memoryview) -> str:
            state["calls"] += 1
            if state["calls"] == 1:
                raise RuntimeError("simulated")
            return render(view)  # type: ignore[misc]
        return once_broken

    monkeypatch.setattr(E, "compile_printf_run", flaky)
    recs = records(layout, 7, 600)
    batched, batched_calls = handler_and_calls(layout)
    run_through_ring(recs, batched, batched, 0)
    single, single_calls = handler_and_calls(layout)
    run_through_ring(recs, single, lambda v: single(v), 0)
    assert merged(batched_calls) == merged(single_calls)
    assert batched.count == len(recs) and not batched.errors


def test_json_mode_takes_no_runs() -> None:
    layout, printfs = build_layout()
    handler, _ = handler_and_calls(layout)
    handler.sink.json = True
    assert handler.run_renderer(printfs[0].id, printfs[0].total_size, printfs[0].total_size + 8) is None


def test_runs_only_for_printf_records_of_the_expected_size() -> None:
    layout, printfs = build_layout()
    handler, _ = handler_and_calls(layout)
    ev = printfs[0]
    assert handler.run_renderer(ev.id, ev.total_size, ev.total_size + 8) is not None
    assert handler.run_renderer(ev.id, ev.total_size + 8, ev.total_size + 16) is None
    assert handler.run_renderer(len(layout.events) + 5, 16, 24) is None
    print_ev = next(e for e in layout.events if e.kind == "print")
    assert handler.run_renderer(print_ev.id, print_ev.total_size, print_ev.total_size + 8) is None
