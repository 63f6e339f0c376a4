"""The stdlib's tools against Debian's bpftrace tools: time to attach and to stop.

    python benchmarks/tools.py [--runs N]     # as root

For each tool both ship in the same form (the stdlib's port keeps Debian's
output), ``pytrace tool NAME`` and ``bpftrace /usr/sbin/NAME.bt`` run
alternately: "start" is the time from fork to the attach marker
(``__BPFTRACE_NOTIFY_PROBES_ATTACHED``), "stop" from SIGINT to exit.  Also
(pytrace only, info): what ``import "syscalls"`` adds to a one-liner's
start-up (a C enum of this kernel's 360 syscall names and a cast).
Medians [min].  Target: no slower than bpftrace.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import _bench as B

TOOLS = ("execsnoop", "opensnoop", "killsnoop", "syncsnoop", "naptime", "setuids")
PLAIN = "tracepoint:raw_syscalls:sys_enter { @[args.id] = count(); }"
IMPORTED = 'import "syscalls"; tracepoint:raw_syscalls:sys_enter { @[syscall_name(args.id)] = count(); }'


@dataclass
class CommandRun(B.Tracer):
    """A Tracer started with a whole command line instead of ``-e SCRIPT``."""

    command: Sequence[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return list(self.command)


def tool_command(tracer: str, name: str) -> list[str]:
    if tracer == "pytrace":
        return B.pytrace_argv() + ["tool", name]
    return ["bpftrace", f"/usr/sbin/{name}.bt"]


def one_run(t: B.Tracer, summary: B.Summary) -> tuple[float, float]:
    t.start()
    try:
        start = t.wait_attached(120)
        time.sleep(0.3)
        stop = t.stop(timeout=120, resend_after=5)
        summary.note_resent(t)
        t.check_ok()
    except B.ToolFailed:
        t.kill()
        raise
    return start, stop


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    summary = B.Summary()
    B.warm_pytrace()
    rows = []
    starts: dict[str, list[float]] = {t: [] for t in B.TOOLS}
    for name in TOOLS:
        res: dict[str, list[tuple[float, float]]] = {t: [] for t in B.TOOLS}
        for r in range(runs):
            for tracer in (B.TOOLS if r % 2 == 0 else tuple(reversed(B.TOOLS))):
                B.wait_quiet(5)
                run = CommandRun(tracer, "", command=tool_command(tracer, name))
                try:
                    res[tracer].append(one_run(run, summary))
                except B.ToolFailed as exc:
                    summary.fail(f"{' '.join(tool_command(tracer, name))}: {exc}")
        med = {t: (B.median(x[0] for x in res[t]), B.median(x[1] for x in res[t])) for t in B.TOOLS}
        for t in B.TOOLS:
            if med[t][0] is not None:
                starts[t].append(med[t][0])  # type: ignore[arg-type]
        pt, bt = med["pytrace"], med["bpftrace"]
        rows.append([name, B.fmt(pt[0], ".3f"), B.fmt(bt[0], ".3f"), B.ratio(pt[0], bt[0]),
                     B.fmt(pt[1], ".3f"), B.fmt(bt[1], ".3f"), B.ratio(pt[1], bt[1])])
        print(f"  {name}: start {B.fmt(pt[0], '.3f')} / {B.fmt(bt[0], '.3f')} s", file=sys.stderr)
    print(f"# pytrace tool NAME vs bpftrace /usr/sbin/NAME.bt: medians of {runs} runs")
    print(B.table(["tool", "pytrace start s", "bpftrace start s", "ratio", "pytrace stop s", "bpftrace stop s",
                   "ratio"], rows))
    pt_all, bt_all = B.median(starts["pytrace"]), B.median(starts["bpftrace"])
    summary.add("tool start-up (median of 6 tools)", pt_all, bt_all, "s", "<= bpftrace",
                None if pt_all is None or bt_all is None else pt_all <= bt_all)

    imports: dict[str, list[float]] = {"plain": [], "import": []}
    for r in range(runs):
        for label, script in (("plain", PLAIN), ("import", IMPORTED)):
            B.wait_quiet(5)
            try:
                imports[label].append(one_run(B.Tracer("pytrace", script), summary)[0])
            except B.ToolFailed as exc:
                summary.fail(f"pytrace -e '{script}': {exc}")
    plain, imported = B.median(imports["plain"]), B.median(imports["import"])
    print()
    print("# what import \"syscalls\" adds to a one-liner's start-up (pytrace)")
    print(B.table(["script", "start s"], [["@[args.id] = count()", B.fmt(plain, ".3f")],
                                           ['import "syscalls"; @[syscall_name(args.id)]', B.fmt(imported, ".3f")]]))
    summary.add('start-up with import "syscalls" (vs none)', imported, None, "s", "(info)", None)
    if plain is not None and imported is not None:
        summary.note(f'import "syscalls" adds {1000 * (imported - plain):.0f} ms to a one-liner\'s start-up')
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
