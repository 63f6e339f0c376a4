"""tracepoint: the kernel's static tracepoints (``tracepoint:category:event``).

Fields of ``args`` come from the tracepoint's tracefs format file (the format
file is the truth: syscall arguments are 8 bytes even when declared int).
Wildcards may be used in both parts.
"""

from __future__ import annotations

import os
import re

from ..diagnostics import suggest
from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from .base import PROG_TRACEPOINT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach, \
    not_found, part_span


class TracepointProvider(Provider):
    name = "tracepoint"
    aliases = ("t",)

    def usage(self) -> str:
        return "tracepoint:category:event (e.g. tracepoint:syscalls:sys_enter_openat)"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("tracepoint", "tracepoint", PROG_TRACEPOINT)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        from ..bpf.attach import attach_tracepoint
        return [attach_tracepoint(prog_fd, a.detail["category"], a.detail["event"], env.tracefs_root())]

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """available_events (what perf can attach to: no ftrace-internal
        events), as bpftrace lists them; the events/ directories if that
        file cannot be read."""
        from ..kernel import tracefs
        root = tracefs.tracefs_root()
        try:
            with open(os.path.join(root, "available_events"), encoding="utf-8", errors="replace") as fh:
                pairs = [line.strip().split(":", 1) for line in fh if ":" in line]
        except OSError:
            pairs = [[c, e] for c, e in tracefs.list_tracepoints(root) if c != "ftrace"]
        return [f"tracepoint:{c}:{e}" for c, e in pairs]

    def describe(self, line: str, lister: ListEnv) -> list[str]:
        """The event's own fields, as its format file declares them."""
        from ..kernel import tracefs
        cat, _, ev = line.partition(":")[2].partition(":")
        try:
            with open(os.path.join(tracefs.tracefs_root(), "events", cat, ev, "format"), errors="replace") as fh:
                text = fh.read()
        except OSError:
            return []
        # The common_* header comes first, then an empty line, then the event's fields.
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
        return [m.group(1).strip() for m in re.finditer(r"^\s*field:([^;]*);", body, re.MULTILINE)]

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
            out.append(ResolvedAttach(self.name, f"tracepoint:{c}:{e}", ap.span, args=fmt.args_struct(env.strlen),
                                      detail={"category": c, "event": e, "format": fmt}))
        return out
