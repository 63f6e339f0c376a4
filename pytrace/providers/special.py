"""BEGIN and END: probes that run once, at start and at exit.

They are not attached to anything: the runtime runs their program once with
``BPF_PROG_TEST_RUN`` (as bpftrace does), so their attach point has no parts.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import Provider, ResolveEnv, ResolvedAttach


class BeginProvider(Provider):
    name = "BEGIN"
    aliases = ("begin",)
    runs_once = True

    def resolve(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) != 1:
            return self.error_form(ap, env, f"{self.name} takes no attach point")
        return [ResolvedAttach(self.name, self.name, ap.span)]

    def usage(self) -> str:
        return self.name


class EndProvider(BeginProvider):
    name = "END"
    aliases = ("end",)
