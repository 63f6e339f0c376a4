"""Attaching one compiled program to what its probe names.

One function per attach kind, dispatched on the program's kind; every
failure is one sentence with a hint (a missing kprobe PMU, a symbol not in
the binary...), and anything attached before the failure is closed.
"""

from __future__ import annotations

import os

from ..bpf import attach as A
from ..bpf.syscalls import PerfHwConfig, PerfSwConfig, PerfType, online_cpus
from ..codegen.llvm.module import ProgramSpec
from ..errors import EnvironmentProblem
from ..kernel.symbols import symbol_offset

KPROBE_PMU = "/sys/bus/event_source/devices/kprobe/type"


def attach_program(spec: ProgramSpec, fd: int, tracefs_root: str | None, pid: int | None,
                   cpid: int | None) -> list[A.Attachment]:
    done: list[A.Attachment] = []
    try:
        for a in spec.attaches:
            done.extend(_attach_one(spec, a, fd, tracefs_root, pid if pid is not None else cpid))
        if spec.kind == "syscall":
            done.append(A.attach_raw_tracepoint(fd, "sys_exit" if spec.ctx.exit else "sys_enter"))
    except BaseException:
        A.close_all(done)
        raise
    return done


def _attach_one(spec: ProgramSpec, a, fd: int, root: str | None, pid: int | None) -> list[A.Attachment]:  # type: ignore[no-untyped-def]
    d = a.detail
    p = a.provider
    if spec.kind == "syscall":
        return []  # the whole group shares one raw tracepoint link (see attach_program)
    if p == "tracepoint":
        assert root is not None
        return [A.attach_tracepoint(fd, d["category"], d["event"], root)]
    if p == "rawtracepoint":
        return [A.attach_raw_tracepoint(fd, d["event"])]
    if p in ("profile", "interval"):
        unit, value = d["unit"], d["value"]
        freq = value if unit == "hz" else 0
        period = 0 if unit == "hz" else int(d["period_ns"])
        cpus = online_cpus() if p == "profile" else [0]
        return [A.attach_perf_event(fd, type=PerfType.SOFTWARE, config=PerfSwConfig.CPU_CLOCK,
                                    sample_period=period, sample_freq=freq, cpu=cpu) for cpu in cpus]
    if p in ("software", "hardware"):
        ptype = PerfType.SOFTWARE if p == "software" else PerfType.HARDWARE
        if p == "hardware" and not os.path.exists("/sys/bus/event_source/devices/cpu"):
            raise EnvironmentProblem(f"cannot attach {a.target}: this machine has no hardware performance "
                                     "counters (no 'cpu' PMU, common in virtual machines)",
                                     "use a software event instead, e.g. software:cpu-clock:1000000")
        return [A.attach_perf_event(fd, type=ptype, config=int(d["config"]), sample_period=int(d["period"]),
                                    cpu=cpu) for cpu in online_cpus()]
    if p in ("uprobe", "uretprobe"):
        path = d["path"]
        if d.get("address") is not None:
            offset = int(d["address"])
        else:
            hit = symbol_offset(path, d["symbol"])
            if hit is None:
                raise EnvironmentProblem(f"cannot attach {a.target}: symbol '{d['symbol']}' not found in {path}",
                                         f"list the functions with: pytrace -l 'uprobe:{path}:*'")
            offset = hit[0]
        offset += int(d.get("offset") or 0)
        return [A.attach_uprobe(fd, path, offset, retprobe=p == "uretprobe", pid=pid if pid else -1)]
    if p in ("kprobe", "kretprobe"):
        # One sentence, no separate hint: what is missing and what to use instead.
        instead = kprobe_alternative(str(d.get("func") or ""), root, exit=p == "kretprobe")
        if not os.path.exists(KPROBE_PMU):
            raise EnvironmentProblem(f"cannot attach {a.target}: this kernel has no kprobes "
                                     f"(CONFIG_KPROBES is off), so trace {instead}")
        raise EnvironmentProblem(f"cannot attach {a.target}: pytrace does not attach kprobes yet, so trace {instead}")
    if p in ("watchpoint", "asyncwatchpoint"):
        targets = [(pid, -1)] if pid else [(-1, cpu) for cpu in online_cpus()]
        return [A.attach_breakpoint(fd, int(d["address"]), int(d["length"]), d["mode"], pid=tp, cpu=cpu)
                for tp, cpu in targets]
    raise EnvironmentProblem(f"cannot attach {a.target}: {p} probes are not supported yet", None)


def kprobe_alternative(func: str, root: str | None, *, exit: bool = False) -> str:
    """What to trace instead of a kprobe on ``func``, ending with "instead":
    a tracepoint of the same name if one exists (``tcp_retransmit_skb``), the
    syscall's tracepoint for a syscall entry point (``__x64_sys_openat``,
    ``do_sys_openat2``; its sys_exit_ one for a kretprobe), else a pointer
    to the list of tracepoints."""
    import re
    from ..kernel import tracefs
    try:
        root = root or tracefs.tracefs_root()
        events = tracefs.list_tracepoints(root)
    except Exception:  # no tracefs: only the generic advice
        events = []
    names = {ev: cat for cat, ev in events}
    if func in names:
        return f"tracepoint:{names[func]}:{func} instead"
    side = "exit" if exit else "enter"
    m = re.match(r"^(?:__x64_sys_|__ia32_sys_|__se_sys_|__do_sys_|do_sys_|ksys_|sys_)(\w+?)(?:2)?$", func)
    if m:
        for cand in (m.group(1), func.split("sys_", 1)[1]):
            if f"sys_{side}_{cand}" in names:
                return f"tracepoint:syscalls:sys_{side}_{cand} instead"
    return "a tracepoint instead (list them with: pytrace -l 'tracepoint:*')"


__all__ = ["attach_program", "kprobe_alternative", "PerfHwConfig"]
