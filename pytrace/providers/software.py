"""software and hardware: perf counter events (``software:page-faults:100``).

``software:event[:count]`` samples every ``count`` events (a default per
event, as bpftrace has); ``hardware:`` needs a hardware PMU, which virtual
machines often lack (reported at attach time).
"""

from __future__ import annotations

import os

from ..frontend.ast import AttachPoint
from .base import (PROG_PERF_EVENT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   not_found, parse_int, part_span)

CPU_PMU = "/sys/bus/event_source/devices/cpu"

# name -> (perf config, default sample period); aliases share a config.
SOFTWARE_EVENTS: dict[str, tuple[int, int]] = {
    "cpu-clock": (0, 1_000_000), "cpu": (0, 1_000_000),
    "task-clock": (1, 1_000_000),
    "page-faults": (2, 100), "faults": (2, 100),
    "context-switches": (3, 1_000), "cs": (3, 1_000),
    "cpu-migrations": (4, 1), "minor-faults": (5, 100), "major-faults": (6, 1),
    "alignment-faults": (7, 1), "emulation-faults": (8, 1), "dummy": (9, 1), "bpf-output": (10, 1),
}
HARDWARE_EVENTS: dict[str, tuple[int, int]] = {
    "cpu-cycles": (0, 1_000_000), "cycles": (0, 1_000_000),
    "instructions": (1, 1_000_000), "cache-references": (2, 1_000_000),
    "cache-misses": (3, 1_000_000), "branch-instructions": (4, 100_000), "branches": (4, 100_000),
    "branch-misses": (5, 100_000), "bus-cycles": (6, 100_000),
    "frontend-stalls": (7, 1_000_000), "backend-stalls": (8, 1_000_000), "ref-cycles": (9, 1_000_000),
}


class SoftwareProvider(Provider):
    name = "software"
    aliases = ("s",)
    events = SOFTWARE_EVENTS

    def usage(self) -> str:
        return f"{self.name}:event or {self.name}:event:count (e.g. {self.name}:{next(iter(self.events))}:1000)"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("perf", "perf", PROG_PERF_EVENT)

    def available(self) -> bool:
        return True

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        """One perf counter per online CPU, sampling every ``period`` events."""
        from ..bpf.attach import attach_perf_event, close_all
        from ..bpf.syscalls import PerfType, online_cpus
        from ..errors import EnvironmentProblem
        if not self.available():
            raise EnvironmentProblem(f"cannot attach {a.target}: this machine has no hardware performance "
                                     "counters (no 'cpu' PMU, common in virtual machines)",
                                     "use a software event instead, e.g. software:cpu-clock:1000000")
        ptype = PerfType.SOFTWARE if self.name == "software" else PerfType.HARDWARE
        done: list = []  # type: ignore[type-arg]
        try:
            for cpu in online_cpus():
                done.append(attach_perf_event(prog_fd, type=ptype, config=int(a.detail["config"]),
                                              sample_period=int(a.detail["period"]), cpu=cpu))
        except BaseException:
            close_all(done)
            raise
        return done

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        if not self.available():
            return []
        return [f"{self.name}:{name}:" for name in self.events]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[1]:
            return self.error_form(ap, env, "an event name is needed")
        event = parts[1]
        if event not in self.events:
            return not_found(env, ap, f"{self.name} event", event, list(self.events), span=part_span(ap, 1))
        config, period = self.events[event]
        if len(parts) == 3:
            value = parse_int(parts[2]) if parts[2] else None
            if value is None or value <= 0:
                return self.error_form(ap, env, f"invalid count '{parts[2]}': a positive integer is needed",
                                       part_span(ap, 2))
            period = value
        return [ResolvedAttach(self.name, f"{self.name}:{event}:{period}", ap.span,
                               detail={"event": event, "config": config, "period": period})]


class HardwareProvider(SoftwareProvider):
    name = "hardware"
    aliases = ("h",)
    events = HARDWARE_EVENTS

    def available(self) -> bool:
        return os.path.exists(CPU_PMU)
