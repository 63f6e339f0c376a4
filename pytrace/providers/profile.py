"""profile: timed sampling on every CPU (``profile:hz:99``, ``profile:ms:10``).

One CPU-clock perf event per CPU runs the program, so ``kstack``/``ustack``
show what each CPU was doing.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import Provider, ResolveEnv, ResolvedAttach, part_span
from .timers import parse_rate, period_ns


class ProfileProvider(Provider):
    name = "profile"
    aliases = ("p",)
    per_cpu = True

    def usage(self) -> str:
        return f"{self.name}:hz:99, {self.name}:s:1, {self.name}:ms:10 or {self.name}:us:100"

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
