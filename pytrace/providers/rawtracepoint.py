"""rawtracepoint: raw (BTF-typed) tracepoints (``rawtracepoint[:module]:event``).

``args`` is typed from the kernel's ``btf_trace_<event>`` prototype; the
arguments are also available as ``arg0..argN``.
"""

from __future__ import annotations

import fnmatch

from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from ..semantic.types import Field, StructType
from .base import Provider, ResolveEnv, ResolvedAttach, not_found


class RawTracepointProvider(Provider):
    name = "rawtracepoint"
    aliases = ("rt",)

    def usage(self) -> str:
        return "rawtracepoint:event or rawtracepoint:module:event (e.g. rawtracepoint:sched_switch)"

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[-1]:
            return self.error_form(ap, env, "a raw tracepoint needs an event name")
        event = parts[-1]
        btf = env.kernel.btf()
        if btf is None:
            # Without BTF only the untyped argN form is available.
            return [ResolvedAttach(self.name, f"rawtracepoint:{event}", ap.span, nargs=6,
                                   detail={"event": event})]
        if has_wildcard(event):
            # Raw tracepoints share their names with tracefs events; the BTF
            # prototype below confirms each one.
            names = sorted({ev for _cat, ev in env.kernel.tracepoints() if fnmatch.fnmatchcase(ev, event)})
            names = [n for n in names if btf.raw_tracepoint_args(n) is not None]
            if not names:
                env.diags.error(f"no raw tracepoints match '{event}'", ap.span)
                return []
        else:
            names = [event]
        out = []
        for name in names:
            args = btf.raw_tracepoint_args(name)
            if args is None:
                return not_found(env, ap, "raw tracepoint", name, [],
                                 [f"list them with: pytrace -l 'rawtracepoint:*{name[:4]}*'"])
            fields = tuple(Field(n or f"arg{i}", t, i * 8) for i, (n, t) in enumerate(args))
            struct = StructType("struct", f"_rawtracepoint_{name}", fields, 8 * len(fields), 8)
            out.append(ResolvedAttach(self.name, f"rawtracepoint:{name}", ap.span, args=struct,
                                      nargs=len(fields), detail={"event": name}))
        return out
