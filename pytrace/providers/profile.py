"""profile: timed sampling on every CPU (``profile:hz:99``, ``profile:ms:10``).

One CPU-clock perf event per CPU runs the program, so ``kstack``/``ustack``
show what each CPU was doing.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import (PROG_PERF_EVENT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   part_span)
from .timers import UNITS, parse_rate, period_ns


class ProfileProvider(Provider):
    name = "profile"
    aliases = ("p",)
    per_cpu = True

    def usage(self) -> str:
        return f"{self.name}:hz:99, {self.name}:s:1, {self.name}:ms:10 or {self.name}:us:100"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("perf", "perf", PROG_PERF_EVENT)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        """A CPU-clock perf event on every online CPU (profile) or on CPU 0
        (interval); ``hz`` is a frequency, the other units a period."""
        from ..bpf.attach import attach_perf_event, close_all
        from ..bpf.syscalls import PerfSwConfig, PerfType, online_cpus
        unit, value = a.detail["unit"], a.detail["value"]
        freq = value if unit == "hz" else 0
        period = 0 if unit == "hz" else int(a.detail["period_ns"])
        done: list = []  # type: ignore[type-arg]
        try:
            for cpu in (online_cpus() if self.per_cpu else [0]):
                done.append(attach_perf_event(prog_fd, type=PerfType.SOFTWARE, config=PerfSwConfig.CPU_CLOCK,
                                              sample_period=period, sample_freq=freq, cpu=cpu))
        except BaseException:
            close_all(done)
            raise
        return done

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        return [f"{self.name}:{u}:" for u in UNITS]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        rate = parse_rate(parts[1:])
        if isinstance(rate, tuple) and len(rate) == 3:
            problem, index = rate[0], rate[2]
            return self.error_form(ap, env, problem, part_span(ap, index) if index else None)
        assert isinstance(rate, tuple)
        unit, value = rate[0], int(rate[1])
        if unit == "ns":
            return self.error_form(ap, env, f"unit '{unit}' is not supported by {self.name} probes",
                                   part_span(ap, 1) if len(parts) == 3 else None)
        return [ResolvedAttach(self.name, f"{self.name}:{unit}:{value}", ap.span,
                               detail={"unit": unit, "value": value, "period_ns": period_ns(unit, value)})]


class IntervalProvider(ProfileProvider):
    """interval: a timer on one CPU (``interval:s:1``, ``interval:ms:100``)."""

    name = "interval"
    aliases = ("i",)
    per_cpu = False
