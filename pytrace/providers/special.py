"""BEGIN and END: probes that run once, at start and at exit.

They are not attached to anything: the runtime runs their program once with
``BPF_PROG_TEST_RUN`` (as bpftrace does), so their attach point has no parts.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import Provider, ResolveEnv, ResolvedAttach, part_span


class BeginProvider(Provider):
    name = "BEGIN"
    aliases = ("begin",)
    runs_once = True
    max_parts = 99  # extra parts get their own message

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) > 1:
            return self.error_form(ap, env, f"{self.name} probes take no parts after the name",
                                   part_span(ap, 1, to_end=True, with_colon=True))
        return [ResolvedAttach(self.name, self.name, ap.span)]

    def usage(self) -> str:
        return self.name


class EndProvider(BeginProvider):
    name = "END"
    aliases = ("end",)
