"""watchpoint and asyncwatchpoint: hardware breakpoints on memory.

Syntax: ``watchpoint:ADDRESS:LENGTH:MODE`` with LENGTH 1, 2, 4 or 8 and MODE
a combination of r, w, x (x only alone, with length 8 as the kernel wants).
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import (PROG_PERF_EVENT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   parse_int, part_span)


class WatchpointProvider(Provider):
    listed_by_default = False
    name = "watchpoint"
    aliases = ("w",)
    max_parts = 4

    def usage(self) -> str:
        return f"{self.name}:0xADDRESS:LENGTH:MODE (e.g. {self.name}:0x404020:8:w)"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("watchpoint", "perf", PROG_PERF_EVENT)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        """A hardware breakpoint (the breakpoint PMU) in the traced process
        (``-p``/``-c``), else on every CPU for kernel addresses."""
        from ..bpf.attach import attach_breakpoint, close_all
        from ..bpf.syscalls import online_cpus
        d = a.detail
        targets = [(env.pid, -1)] if env.pid else [(-1, cpu) for cpu in online_cpus()]
        done: list = []  # type: ignore[type-arg]
        try:
            for pid, cpu in targets:
                done.append(attach_breakpoint(prog_fd, int(d["address"]), int(d["length"]), d["mode"],
                                              pid=pid, cpu=cpu))
        except BaseException:
            close_all(done)
            raise
        return done

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        return []  # an address to watch is not something the kernel lists

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) != 4:
            return self.error_form(ap, env, "an address, a length and a mode are needed")
        address = parse_int(parts[1]) if parts[1] else None
        if address is None:
            return self.error_form(ap, env, f"invalid address '{parts[1]}'", part_span(ap, 1))
        length = parse_int(parts[2]) if parts[2] else None
        if length not in (1, 2, 4, 8):
            return self.error_form(ap, env, f"invalid length '{parts[2]}' (use 1, 2, 4 or 8)", part_span(ap, 2))
        mode = parts[3]
        if not mode or any(c not in "rwx" for c in mode) or len(set(mode)) != len(mode):
            return self.error_form(ap, env, f"invalid mode '{mode}' (use r, w, x or rw)", part_span(ap, 3))
        if "x" in mode and len(mode) > 1:
            return self.error_form(ap, env, "mode 'x' cannot be combined with 'r' or 'w'", part_span(ap, 3))
        return [ResolvedAttach(self.name, f"{self.name}:{address:#x}:{length}:{mode}", ap.span,
                               detail={"address": address, "length": length, "mode": mode})]


class AsyncWatchpointProvider(WatchpointProvider):
    name = "asyncwatchpoint"
    aliases = ("aw",)
