"""The syscall wildcard: start and stop times and peak RSS, pytrace vs bpftrace 0.17.

    python benchmarks/wildcard.py [--runs N] [--bpftrace-runs N]     # as root

    tracepoint:syscalls:sys_enter_* { @[probe] = count(); }

attaches one program to each of the ~360 sys_enter_* tracepoints.
"start" is the time from fork to the attach marker, "stop" the time from
SIGINT to the exit (reaped with os.wait4: detaching every perf-event
tracepoint waits for an RCU grace period, and the map is printed), "RSS"
the peak RSS of the process; the number of BPF programs the tool held and
of probes it reported ("Attaching N probes...") are shown too.  bpftrace
0.17 holds one perf event per tracepoint and takes ~30 s to stop here (its
start has been measured at up to ~30 s too), so it runs fewer times
(default 2, pytrace 3) with a 300 s timeout.  Medians [min].
Target: pytrace no slower than bpftrace.
"""

from __future__ import annotations

import re
import sys
import time

import _bench as B

SCRIPT = "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }"


def one_run(tool: str, summary: B.Summary) -> tuple[float, float, int, int, int, int]:
    t = B.Tracer(tool, SCRIPT).start()
    try:
        start = t.wait_attached(300)
        assert t.proc is not None
        progs = len(B.bpf_progs_of(t.proc.pid))
        time.sleep(1.0)
        stop = t.stop(timeout=300, resend_after=150)
        summary.note_resent(t)
        t.check_ok()
    except B.ToolFailed:
        t.kill()
        raise
    m = re.search(r"Attaching (\d+) probes", t.stdout)
    keys = len([ln for ln in t.stdout.splitlines() if ln.startswith("@[")])
    return start, stop, t.maxrss_kb, progs, int(m.group(1)) if m else -1, keys


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    bt_runs = int(argv[argv.index("--bpftrace-runs") + 1]) if "--bpftrace-runs" in argv else 2
    summary = B.Summary()
    B.warm_pytrace()
    res: dict[str, list[tuple[float, float, int, int, int, int]]] = {tool: [] for tool in B.TOOLS}
    failed: dict[str, str] = {}
    for r in range(max(runs, bt_runs)):
        for tool in (B.TOOLS if r % 2 == 0 else tuple(reversed(B.TOOLS))):
            if tool in failed or r >= (runs if tool == "pytrace" else bt_runs):
                continue
            B.wait_quiet(5)
            try:
                res[tool].append(one_run(tool, summary))
                x = res[tool][-1]
                print(f"  {tool}: start {x[0]:.2f} s, stop {x[1]:.2f} s", file=sys.stderr)
            except B.ToolFailed as exc:
                failed[tool] = str(exc)
                summary.fail(f"{tool} -e '{SCRIPT}': {exc}")
    print(f"# {SCRIPT}: medians [min] of {runs} (pytrace) / {bt_runs} (bpftrace) runs")
    rows = []
    fig: dict[str, tuple[float | None, float | None, float | None]] = {}
    for tool in B.TOOLS:
        rs = res[tool]
        if not rs:
            rows.append([tool, "FAILED", "-", "-", "-", "-", "-", "-", "-"])
            fig[tool] = (None, None, None)
            continue
        s, st, rss = B.median(x[0] for x in rs), B.median(x[1] for x in rs), B.median(x[2] for x in rs)
        fig[tool] = (s, st, rss)
        rows.append([tool, f"{s:.2f} [{min(x[0] for x in rs):.2f}]", f"{st:.2f} [{min(x[1] for x in rs):.2f}]",
                     f"{rss / 1024:.0f}", rs[0][4], rs[0][3], B.median(x[5] for x in rs), "", ""])
    pt, bt = fig["pytrace"], fig["bpftrace"]
    if pt[0] is not None and bt[0] is not None:
        rows[0][7] = B.ratio(pt[0], bt[0])
        rows[0][8] = B.ratio(pt[1], bt[1])
    print(B.table(["tool", "start s", "stop s", "RSS MiB", "probes", "BPF progs", "@[ keys", "start ratio",
                   "stop ratio"], rows))
    for tool, text in failed.items():
        print(f"FAILED {tool}: {text}")
    summary.add("wildcard sys_enter_* start", pt[0], bt[0], "s", "<= bpftrace",
                None if pt[0] is None or bt[0] is None else pt[0] <= bt[0])
    summary.add("wildcard sys_enter_* stop", pt[1], bt[1], "s", "<= bpftrace",
                None if pt[1] is None or bt[1] is None else pt[1] <= bt[1])
    summary.add("wildcard sys_enter_* peak RSS", None if pt[2] is None else pt[2] / 1024,
                None if bt[2] is None else bt[2] / 1024, "MiB", "(info)", None)
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
