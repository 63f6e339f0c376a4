"""Added cost per event, pytrace vs bpftrace 0.17.

    python benchmarks/per_event.py [--rounds N] [--calls N] [--cpu N] [--pytrace-path DIR]   # as root

For each script, each round: a workload process pinned to one CPU (by
default the last one: see below) makes N
getpid(2) calls (default 2,000,000) with no tool attached (baseline), then
under each tool in turn (order alternating between rounds):

* end to end: the workload's time with the tool attached minus the
  baseline of the same round, per syscall ("added ns/syscall").  This run
  is made with ``kernel.bpf_stats_enabled`` as found (normally 0), so the
  statistics' own clock reads are not counted;
* in the kernel: a second run with ``kernel.bpf_stats_enabled=1``; the
  tool's programs (found through /proc/PID/fdinfo) are read with
  ``bpftool -j prog show id N`` before and after, and ns/event is
  Δrun_time_ns / Δrun_cnt over all of them.  The sysctl is restored.

The end-to-end figure also counts kernel work outside the program, e.g.
the perf-event tracepoint's sample path, which runs after the program when
it returns non-zero, on the CPU the perf event was opened for: bpftrace
0.17's programs return 1 and its tracepoint events are opened on CPU 0, so
a workload on CPU 0 pays ~1 us more per syscall under bpftrace than on
another CPU (``--cpu 0`` shows it).
raw_syscalls:sys_enter fires for every syscall on the machine, so run_cnt
also counts other processes' syscalls (Δrun_cnt is shown).  Figures are
medians over the rounds.  Each round first waits (up to 3 s) for other
sessions' BPF programs to go away; how many were left is printed.  pytrace
runs from this checkout (``PYTHONPATH``), or from ``--pytrace-path DIR``.
Target: pytrace no more than bpftrace.
"""

from __future__ import annotations

import os
import sys

import _bench as B

SCRIPTS = {
    "@[comm] = count()": "tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }",
    "@ = hist(args->id)": "tracepoint:raw_syscalls:sys_enter { @ = hist(args->id); }",
}


def stats(ids: list[int]) -> tuple[int, int, list[str]]:
    rt = cnt = 0
    names = []
    for i in ids:
        info = B.prog_info(i)
        rt += int(info.get("run_time_ns", 0))
        cnt += int(info.get("run_cnt", 0))
        names.append(f"{info.get('type')}:{info.get('name')}")
    return rt, cnt, names


def measure(tool: str, script: str, w: B.Workload, calls: int, summary: B.Summary) -> dict[str, object]:
    t = B.Tracer(tool, script).start()
    try:
        t.wait_attached(60)
        assert t.proc is not None
        ids = B.bpf_progs_of(t.proc.pid)
        if not ids:
            raise B.ToolFailed("no BPF program found in /proc/PID/fdinfo")
        e2e = w.run(f"loop {calls}")
        with B.BpfStats():
            rt0, cnt0, names = stats(ids)
            w.run(f"loop {calls}")
            rt1, cnt1, _ = stats(ids)
        t.stop(timeout=60, resend_after=5)
        summary.note_resent(t)
        t.check_ok()
    except B.ToolFailed:
        t.kill()
        raise
    d_cnt = cnt1 - cnt0
    return {"e2e": e2e, "ns_event": (rt1 - rt0) / d_cnt if d_cnt else None, "d_cnt": d_cnt, "progs": names,
            "rss": t.maxrss_kb}


def main(argv: list[str]) -> None:
    B.check_environment()
    pytrace_path = B.pytrace_tree(argv)
    os.environ["PYTHONPATH"] = pytrace_path
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 5
    calls = int(argv[argv.index("--calls") + 1]) if "--calls" in argv else 2_000_000
    cpu = int(argv[argv.index("--cpu") + 1]) if "--cpu" in argv else max(os.sched_getaffinity(0))
    summary = B.Summary()
    stats_before = open(B.BpfStats.PATH).read().strip()
    rows = []
    progs: dict[tuple[str, str], list[str]] = {}
    noisy: list[int] = []
    rounds_text: list[str] = []
    with B.Workload(cpu=cpu) as w:
        w.run(f"loop {calls // 4}")  # warm-up
        for name, script in SCRIPTS.items():
            base: list[float] = []
            res: dict[str, list[dict[str, object]]] = {tool: [] for tool in B.TOOLS}
            added: dict[str, list[float]] = {tool: [] for tool in B.TOOLS}
            failed: dict[str, str] = {}
            for r in range(rounds):
                noisy.append(B.wait_quiet(3))
                b = w.run(f"loop {calls}")
                base.append(b)
                for tool in (B.TOOLS if r % 2 == 0 else tuple(reversed(B.TOOLS))):
                    if tool in failed:
                        continue
                    try:
                        m = measure(tool, script, w, calls, summary)
                    except B.ToolFailed as exc:
                        failed[tool] = str(exc)
                        summary.fail(f"{tool} -e '{script}': {exc}")
                        continue
                    res[tool].append(m)
                    added[tool].append((float(m["e2e"]) - b) / calls * 1e9)  # type: ignore[arg-type]
                    progs[(name, tool)] = m["progs"]  # type: ignore[assignment]
            fig = {}
            for tool in B.TOOLS:
                rs = res[tool]
                ns_events = [float(m["ns_event"]) for m in rs if m["ns_event"] is not None]  # type: ignore[arg-type]
                fig[tool] = (B.median(ns_events),
                             B.median(added[tool]),
                             B.median(float(m["e2e"]) for m in rs) if rs else None,  # type: ignore[arg-type]
                             B.median(int(m["d_cnt"]) for m in rs) if rs else None)  # type: ignore[arg-type]
            for tool in B.TOOLS:
                ns, add, e2e, dc = fig[tool]
                if tool in failed and ns is None:
                    rows.append([name, tool, "FAILED", "-", "-", "-", "-", "-"])
                    continue
                other = fig["bpftrace"]
                rows.append([name, tool, B.fmt(ns), B.fmt(dc, ".0f"), B.fmt(add), B.fmt(e2e and e2e * 1e9 / calls),
                             "-" if tool == "bpftrace" else B.ratio(ns, other[0]),
                             "-" if tool == "bpftrace" else B.ratio(add, other[1])])
            rows.append([name, "(no tool)", "", "", "", B.fmt(B.median(base) * 1e9 / calls), "", ""])
            for tool in B.TOOLS:
                rounds_text.append(f"  {name}, {tool}: added ns/syscall per round "
                                   f"{[round(x) for x in added[tool]]}, BPF ns/event per round "
                                   f"{[round(float(m['ns_event'])) for m in res[tool] if m['ns_event'] is not None]}")
            rounds_text.append(f"  {name}, no tool: ns/syscall per round {[round(b * 1e9 / calls) for b in base]}")
            pt, bt = fig["pytrace"], fig["bpftrace"]
            if pt[0] is not None and bt[0] is not None:
                summary.add(f"BPF ns/event, {name}", pt[0], bt[0], "ns", "<= bpftrace", pt[0] <= bt[0])
            if pt[1] is not None and bt[1] is not None:
                summary.add(f"added ns/syscall end to end, {name}", pt[1], bt[1], "ns", "<= bpftrace",
                            pt[1] <= bt[1])
    assert open(B.BpfStats.PATH).read().strip() == stats_before
    print(f"# cost per event on raw_syscalls:sys_enter: {calls:,} getpid(2) on CPU {cpu}, {rounds} rounds, medians;"
          f" pytrace from {pytrace_path}")
    print(f"# BPF ns/event = Δrun_time_ns/Δrun_cnt (bpf_stats_enabled=1); added = workload time with the tool"
          f" minus without, per syscall (stats as found: {stats_before})")
    print(f"# other sessions' BPF programs loaded at the start of each round: {noisy} (their programs on"
          f" syscall tracepoints make the end-to-end figures noisy; the BPF ns/event figures are not affected)")
    print(B.table(["script", "tool", "BPF ns/event", "Δrun_cnt", "added ns/syscall", "ns/syscall",
                   "ratio BPF", "ratio added"], rows, left=2))
    print("\n".join(rounds_text))
    for (name, tool), names in progs.items():
        print(f"  programs of {tool} for {name}: {', '.join(names)}")
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
