"""Ring-buffer events to output: printf lines, time, exit, print, clear...

Each record starts with the event id the code generator assigned; the
``EventLayout`` of that id says where each argument sits.  Events are handled
in the order the kernel produced them.

This module owns that dispatch and its hot paths.  Text-mode printf events
with a compiled renderer (``fastprintf``) are collected and written once
per drained batch (``flush()``); runs of same-id printf records are handed
over whole by the ring buffer (``EventHandler.run_renderer``) and rendered
a chunk at a time.  Any other event first writes what was collected, so the
output keeps the ring's order.
"""

from __future__ import annotations

import sys
import time as _time
import traceback
from typing import Callable

from ..bpf.syscalls import BPF_RINGBUF_HDR_SZ
from ..codegen.layout import EventLayout, Layout
from ..output import values as V
from ..records import dataclass, field
from ..semantic import formats
from ..semantic import types as T
from .decode import Resolver
from .fastprintf import compile_printf, compile_printf_run


@dataclass
class EventSink:
    """What events do: write text, stop the session, act on maps."""

    write: Callable[[str], None]
    on_exit: Callable[[int], None]
    on_print_map: Callable[[str, int, int], None]
    on_clear: Callable[[str, bool], None]
    on_print_value: Callable[[object], None]
    system: Callable[[str], None] | None = None
    json: bool = False
    # Where a record that cannot be turned into output is reported (the
    # session goes on); stderr by default.
    on_error: Callable[[str], None] | None = None


_UNSET = object()


@dataclass
class EventHandler:
    layout: Layout
    resolver: Resolver
    sink: EventSink
    _parsed: dict[int, formats.ParseResult] = field(default_factory=dict)
    _fast: dict[int, Callable[[memoryview], str | None] | None] = field(default_factory=dict)
    count: int = 0
    errors: int = 0

    def _segments(self, ev: EventLayout) -> formats.ParseResult:
        if ev.id not in self._parsed:
            self._parsed[ev.id] = formats.parse_format(ev.format or "")
        return self._parsed[ev.id]

    def __post_init__(self) -> None:
        # Hot path for text-mode printf events with a compiled renderer:
        # event id (its first byte, while ids fit one) -> renderer.  Their
        # text is collected and written once per drained batch (flush()).
        self._hot: dict[int, Callable[[memoryview], str | None]] = {}
        self._pending: list[str] = []
        self._small_ids = len(self.layout.events) < 256
        # (event id, record length) -> the run function, or None (per record).
        self._runs: dict[tuple[int, int], Callable[[memoryview], None] | None] = {}

    def flush(self) -> None:
        """Write the text collected by the hot path (keeps event order: any
        other event flushes it first)."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.sink.write(text)

    def __call__(self, rec: memoryview) -> None:
        """Handle one record.  Never raises: an exception here would carry
        the record's memoryview (and the ring buffer's) in its traceback and
        keep the ring buffer from being unmapped; it is reported instead."""
        try:
            hot = self._hot.get(rec[0]) if self._small_ids else None
            if hot is not None:
                text = hot(rec)
                if text is not None:
                    self.count += 1
                    self._pending.append(text)
                    return
            if self._pending:
                self.flush()
            self._handle(rec)
        except Exception as exc:  # noqa: BLE001 - reported, not propagated
            message = f"pytrace: internal error while handling an event: {type(exc).__name__}: {exc}"
            traceback.clear_frames(exc.__traceback__)
            del exc, rec
            self.errors += 1
            if self.sink.on_error is not None:
                self.sink.on_error(message)
            else:
                print(message, file=sys.stderr)

    def run_renderer(self, eid: int, length: int, stride: int) -> Callable[[memoryview], None] | None:
        """For the ring buffer (see RingBuffer): a function printing a run of
        records of event ``eid`` that are ``length`` bytes long, or None when
        they take the per-record path."""
        key = (eid, length)
        run = self._runs.get(key, _UNSET)
        if run is _UNSET:
            run = self._runs[key] = self._compile_run(eid, length, stride)
        return run  # type: ignore[return-value]

    def _compile_run(self, eid: int, length: int, stride: int) -> Callable[[memoryview], None] | None:
        if self.sink.json or eid >= len(self.layout.events):
            return None
        ev = self.layout.events[eid]
        if ev.kind != "printf" or length != ev.total_size:
            return None
        render = compile_printf_run(ev, self._segments(ev), BPF_RINGBUF_HDR_SZ, stride)
        if render is None:
            return None
        pending = self._pending

        def run(view: memoryview) -> None:
            try:
                text = render(view)
            except Exception:  # noqa: BLE001 - the per-record path reports it
                # Nothing of the run was printed yet: print it record by
                # record, each failure reported as __call__ does.
                for at in range(BPF_RINGBUF_HDR_SZ, len(view), stride):
                    self(view[at:at + length])
                return
            self.count += len(view) // stride
            pending.append(text)
        return run

    def _handle(self, rec: memoryview) -> None:
        self.count += 1
        eid = int.from_bytes(rec[:8], "little")
        if eid >= len(self.layout.events):
            return
        ev = self.layout.events[eid]
        k = ev.kind
        if k == "printf":
            fast = self._fast.get(eid, _UNSET)
            if fast is _UNSET:
                fast = self._fast[eid] = compile_printf(ev, self._segments(ev))
            if fast is not None:
                if self._small_ids and not self.sink.json:
                    self._hot[eid] = fast
                text = fast(rec)
                if text is not None:
                    self._out("printf", text)
                    return
        if k in ("printf", "system", "cat"):
            segments = self._segments(ev).segments
            values = [self._arg(a.type, rec, a.offset) for a in ev.args]
            convs = [seg for seg in segments if isinstance(seg, formats.Conversion)]
            for i, (a, conv) in enumerate(zip(ev.args, convs)):
                if isinstance(a.declared, T.EnumType) and conv.conv == "s":
                    values[i] = a.declared.name_of(int(values[i]))  # type: ignore[call-overload]
            text = formats.render(segments, values)
            if k == "printf":
                self._out("printf", text)
            elif k == "system" and self.sink.system is not None:
                if self.sink.json:
                    # 0.17 captures the command's output in JSON mode.
                    self._out("syscall", _run_captured(text))
                else:
                    self.sink.system(text)
            elif k == "cat":
                self._cat(text)
        elif k == "time":
            now = _time.time_ns()
            text = formats.render_time(ev.format or "%H:%M:%S\n", now // 1_000_000_000, now % 1_000_000_000,
                                       builtin="time")
            if text is not None:
                self._out("time", text)
        elif k == "exit":
            code = int.from_bytes(rec[8:16], "little", signed=True) if ev.args else 0
            self.sink.on_exit(code)
        elif k == "print":
            self.sink.on_print_map(ev.map_name or "", int(ev.extra.get("top", 0)), int(ev.extra.get("div", 1)))
        elif k in ("clear", "zero"):
            self.sink.on_clear(ev.map_name or "", k == "zero")
        elif k == "print_value":
            self.sink.on_print_value(self.resolver.value(ev.args[0].type, rec, ev.args[0].offset))
        elif k == "join":
            n, ln = int(ev.extra["count"]), int(ev.extra["len"])
            parts = []
            for i in range(n):
                raw = bytes(rec[8 + i * ln: 8 + (i + 1) * ln])
                s = raw.split(b"\0", 1)[0]
                if not s:
                    break
                parts.append(s.decode("utf-8", "surrogateescape"))
            joined = str(ev.extra.get("sep", " ")).join(parts)
            # Text mode ends the line; 0.17's JSON message has no newline.
            self._out("join", joined if self.sink.json else joined + "\n")

    def _arg(self, t, rec: memoryview, off: int) -> object:  # type: ignore[no-untyped-def]
        v = self.resolver.value(t, rec, off)
        if isinstance(v, tuple):
            from ..output.text import format_value
            return format_value(v)
        if hasattr(v, "frames"):
            # A stack inside printf text: its frames, each on its own line,
            # without the extra newline print() adds after it (as 0.17).
            from ..output.text import value_str
            return value_str(v) if v.frames else ""  # type: ignore[attr-defined]
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, V.Buffer):
            return v.data          # %r/%rx/%rh format bytes
        return v

    def _cat(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read(10240)
            self._out("cat", data.decode("utf-8", "replace"))
        except OSError as exc:
            self._out("cat", f"ERROR: failed to open file '{path}': {exc.strerror}\n")

    def _out(self, kind: str, text: str) -> None:
        if self.sink.json:
            from ..output import json as out_json
            self.sink.write(out_json.format_message(kind, text))
        else:
            self.sink.write(text)


def _run_captured(command: str) -> str:
    import subprocess
    done = subprocess.run(command, shell=True, stdout=subprocess.PIPE)
    return done.stdout.decode("utf-8", "surrogateescape")
