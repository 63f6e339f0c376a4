"""profile: timed sampling on every CPU (``profile:hz:99``, ``profile:ms:10``).

One CPU-clock perf event per CPU runs the program, so ``kstack``/``ustack``
show what each CPU was doing.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import Provider, ResolveEnv, ResolvedAttach
from .timers import parse_rate, period_ns


class ProfileProvider(Provider):
    name = "profile"
    aliases = ("p",)
    per_cpu = True

    def usage(self) -> str:
        return f"{self.name}:hz:99, {self.name}:s:1, {self.name}:ms:10 or {self.name}:us:100"

    def resolve(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        rate = parse_rate(parts[1:])
        if isinstance(rate, str):
            return self.error_form(ap, env, rate)
        unit, value = rate
        if unit == "ns" or (unit == "us" and value < 1 and self.per_cpu):
            return self.error_form(ap, env, f"unit '{unit}' is not supported")
        return [ResolvedAttach(self.name, f"{self.name}:{unit}:{value}", ap.span,
                               detail={"unit": unit, "value": value, "period_ns": period_ns(unit, value)})]


class IntervalProvider(ProfileProvider):
    """interval: a timer on one CPU (``interval:s:1``, ``interval:ms:100``)."""

    name = "interval"
    aliases = ("i",)
    per_cpu = False
