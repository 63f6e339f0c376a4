"""kprobe and kretprobe: dynamic probes on kernel functions.

Syntax: ``kprobe:func``, ``kprobe:func+offset``, ``kprobe:module:func``,
``kprobe:0xaddr``; ``kretprobe:func``.  Whether the kernel offers kprobes is
decided at attach time (this project's reference VM has none), so resolution
only checks the syntax.
"""

from __future__ import annotations

import re

from ..frontend.ast import AttachPoint
from ..semantic.types import U64
from .base import Provider, ResolveEnv, ResolvedAttach, parse_int, part_span

_FUNC = re.compile(r"^[A-Za-z_.*?\[\]][A-Za-z0-9_.*?\[\]]*$")


class KprobeProvider(Provider):
    name = "kprobe"
    aliases = ("k",)
    is_return = False

    def usage(self) -> str:
        return f"{self.name}:function, {self.name}:function+offset or {self.name}:module:function"

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[-1]:
            return self.error_form(ap, env, "a kernel function is needed")
        module = parts[1] if len(parts) == 3 else None
        func, offset = parts[-1], 0
        last = len(parts) - 1
        if "+" in func:
            plus = func.index("+")
            if self.is_return:
                return self.error_form(ap, env, f"a {self.name} cannot have an offset",
                                       part_span(ap, last, skip=plus))
            func, off = func.split("+", 1)
            value = parse_int(off) if off else None
            if value is None:
                return self.error_form(ap, env, f"invalid offset '{off}'", part_span(ap, last, skip=plus + 1))
            offset = value
        address = parse_int(func) if func[:1].isdigit() else None
        if address is None and not _FUNC.match(func):
            return self.error_form(ap, env, f"invalid function name '{func}'", part_span(ap, last))
        target = f"{self.name}:" + (f"{module}:" if module else "") + func + (f"+{offset}" if offset else "")
        return [ResolvedAttach(self.name, target, ap.span, nargs=0 if self.is_return else 6,
                               retval=U64 if self.is_return else None, has_func=True,
                               detail={"module": module, "func": func, "offset": offset, "address": address})]


class KretprobeProvider(KprobeProvider):
    name = "kretprobe"
    aliases = ("kr",)
    is_return = True
