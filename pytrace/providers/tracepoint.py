"""tracepoint: the kernel's static tracepoints (``tracepoint:category:event``).

Fields of ``args`` come from the tracepoint's tracefs format file (the format
file is the truth: syscall arguments are 8 bytes even when declared int).
Wildcards may be used in both parts.
"""

from __future__ import annotations

from ..diagnostics import suggest
from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from .base import Provider, ResolveEnv, ResolvedAttach, not_found, part_span


class TracepointProvider(Provider):
    name = "tracepoint"
    aliases = ("t",)

    def usage(self) -> str:
        return "tracepoint:category:event (e.g. tracepoint:syscalls:sys_enter_openat)"

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) != 3 or not parts[1] or not parts[2]:
            return self.error_form(ap, env, "a tracepoint needs a category and an event")
        cat, ev = parts[1], parts[2]
        kernel = env.kernel
        if has_wildcard(cat) or has_wildcard(ev):
            matches = kernel.match_tracepoints(cat, ev)
            # The ftrace category lists internal events that cannot be attached.
            matches = [m for m in matches if m[0] != "ftrace"]
            if not matches:
                env.diags.error(f"no tracepoints match '{cat}:{ev}'", ap.span,
                                hints=[f"list them with: pytrace -l 'tracepoint:{cat}:*'"])
                return []
        else:
            if not kernel.has_tracepoint(cat, ev):
                if cat not in kernel.categories():
                    return not_found(env, ap, "tracepoint category", cat, kernel.categories(),
                                     span=part_span(ap, 1))
                events = [e for c, e in kernel.match_tracepoints(cat, "*")]
                env.diags.error(f"tracepoint not found: {cat}:{ev}", part_span(ap, 2),
                                hints=suggest(ev, events) or [f"list them with: pytrace -l 'tracepoint:{cat}:*'"])
                return []
            matches = [(cat, ev)]
        out = []
        for c, e in matches:
            fmt = kernel.tracepoint_format(c, e)
            if fmt is None:
                continue
            out.append(ResolvedAttach(self.name, f"tracepoint:{c}:{e}", ap.span, args=fmt.args_struct(),
                                      detail={"category": c, "event": e, "format": fmt}))
        return out
