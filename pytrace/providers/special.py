"""BEGIN and END: probes that run once, at start and at exit.

They are not attached to anything: the runtime runs their program once with
``BPF_PROG_TEST_RUN`` (as bpftrace does), so their attach point has no parts.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import PROG_RAW_TRACEPOINT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach, \
    part_span


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

    def program(self, a: ResolvedAttach) -> ProgramShape:
        # A raw-tracepoint program: BPF_PROG_TEST_RUN can run it with a
        # made-up context (net/bpf/test_run.c), and nothing attaches it.
        return ProgramShape(self.name.lower(), "raw", PROG_RAW_TRACEPOINT)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        return []  # run once by the session, at start or at exit

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        return [self.name]


class EndProvider(BeginProvider):
    name = "END"
    aliases = ("end",)
