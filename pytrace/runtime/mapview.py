"""A session's maps as output: decoded for printing at exit, by
``print()``, and from the REPL while the session runs (``.print``,
``.clear``, ``.maps``), and cleared or zeroed by ``clear()``/``zero()``.

A mixin of ``Session``: it uses the session's ``layout``, ``maps``,
``resolver``, ``options`` and ``_write``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..bpf.syscalls import possible_cpus
from ..codegen.layout import ValueKind
from ..output import text as out_text
from . import decode

if TYPE_CHECKING:
    from ..bpf.maps import BpfMap
    from ..codegen.layout import Layout
    from .session import RunOptions


class MapOutput:
    """Map printing and clearing for the Session."""

    layout: "Layout | None"
    maps: "dict[str, BpfMap]"
    resolver: "decode.Resolver | None"
    options: "RunOptions"

    if TYPE_CHECKING:
        def _write(self, text: str) -> None: ...
        def _flush(self) -> None: ...

    def map_data(self, name: str):  # type: ignore[no-untyped-def]
        assert self.layout is not None and self.resolver is not None
        ml = self.layout.maps[name]
        m = self.maps[ml.bpf_name]
        items = m.items_percpu() if ml.percpu else m.items()
        return decode.decode_map(self.resolver, ml, items)

    def _formats(self):  # type: ignore[no-untyped-def]
        """The output module of -f: output.json or output.text (same functions)."""
        if self.options.json:
            from ..output import json as out_json
            return out_json
        return out_text

    def print_all_maps(self) -> None:
        assert self.layout is not None
        # Empty maps too: 0.17 prints a blank line (two for avg/stats) for each.
        self._write(self._formats().format_maps_at_exit([self.map_data(name) for name in self.layout.maps]))

    def _print_map(self, name: str, top: int, div: int) -> None:
        self._write(self._formats().format_map(self.map_data(name), top=top, div=div))

    def _clear_map(self, name: str, zero: bool) -> None:
        assert self.layout is not None
        ml = self.layout.maps[name]
        m = self.maps[ml.bpf_name]
        if not zero or ml.kind is ValueKind.HIST:
            m.clear()
            return
        width = possible_cpus() if ml.percpu else 1
        for key, _ in m.items():
            m.update(key, [bytes(ml.value_size)] * width if ml.percpu else bytes(ml.value_size))

    def _print_value(self, value: object) -> None:
        if self.options.on_value is not None:
            self.options.on_value(value)
            return
        self._write(self._formats().format_value(value))

    # ------------------------------------------------------------------ from the REPL
    def print_map_now(self, name: str) -> None:
        """``.print @name``: the map's current contents, the session running on."""
        self._print_map(name, 0, 1)
        self._flush()

    def clear_map_now(self, name: str) -> None:
        """``.clear @name``: every element deleted, the session running on."""
        self._clear_map(name, zero=False)

    def map_length(self, name: str) -> int:
        """How many elements map ``name`` holds now (a hist counts its buckets)."""
        assert self.layout is not None
        return sum(1 for _ in self.maps[self.layout.maps[name].bpf_name].keys())
