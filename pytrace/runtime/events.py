"""Ring-buffer events to output: printf lines, time, exit, print, clear...

Each record starts with the event id the code generator assigned; the
``EventLayout`` of that id says where each argument sits.  Events are handled
in the order the kernel produced them.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from typing import Callable

from ..codegen.layout import EventLayout, Layout
from ..semantic import formats
from .decode import Resolver


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


@dataclass
class EventHandler:
    layout: Layout
    resolver: Resolver
    sink: EventSink
    _parsed: dict[int, formats.ParseResult] = field(default_factory=dict)
    count: int = 0

    def _segments(self, ev: EventLayout) -> formats.ParseResult:
        if ev.id not in self._parsed:
            self._parsed[ev.id] = formats.parse_format(ev.format or "")
        return self._parsed[ev.id]

    def __call__(self, rec: memoryview) -> None:
        self.count += 1
        eid = int.from_bytes(rec[:8], "little")
        if eid >= len(self.layout.events):
            return
        ev = self.layout.events[eid]
        k = ev.kind
        if k in ("printf", "system", "cat"):
            values = [self._arg(a.type, rec, a.offset) for a in ev.args]
            text = formats.render(self._segments(ev).segments, values)
            if k == "printf":
                self._out("printf", text)
            elif k == "system" and self.sink.system is not None:
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
                parts.append(s.decode("utf-8", "replace"))
            self._out("join", str(ev.extra.get("sep", " ")).join(parts) + "\n")

    def _arg(self, t, rec: memoryview, off: int) -> object:  # type: ignore[no-untyped-def]
        v = self.resolver.value(t, rec, off)
        if isinstance(v, tuple):
            from ..output.text import format_value
            return format_value(v)
        if hasattr(v, "frames"):
            from ..output.text import format_value
            return format_value(v)
        if isinstance(v, bool):
            return int(v)
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
            import json
            self.sink.write(json.dumps({"type": kind, "data": text}) + "\n")
        else:
            self.sink.write(text)
