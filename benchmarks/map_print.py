"""Time to print a 100,000-key map at exit, pytrace vs bpftrace 0.17.

    python benchmarks/map_print.py [--runs N] [--keys N] [--pytrace-path DIR]     # as root

pytrace runs from this checkout (``PYTHONPATH``), not from whatever copy
was last pip-installed, which the console script would import otherwise;
``--pytrace-path`` measures another tree (e.g. ``git archive HEAD`` unpacked,
for a before/after comparison).

The map is filled from real events (a BEGIN loop of 100,000 iterations is
beyond bpftrace 0.17's verifier limits):

    tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @[nsecs] = count(); }

with a workload process (``$1``) making exactly N getpid(2) calls (default
100,000: N distinct keys), ``BPFTRACE_MAP_KEYS_MAX`` (bpftrace 0.17's name)
and ``BPFTRACE_MAX_MAP_KEYS`` (the newer name; pytrace reads both) set to
2 N.  Then SIGINT; the figure is the time from the signal to the exit of
the tool (reaped with os.wait4), which is reading the map, sorting and
printing it, with stdout redirected to a file.  The output's ``@[`` lines
are counted (must be N) and its size reported.  N runs per tool (default
5), alternating; medians.  Target: pytrace faster than bpftrace.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import _bench as B

SCRIPT = "tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @[nsecs] = count(); }"


def one_run(tool: str, keys: int, tmp: str, summary: B.Summary,
            pytrace_path: str) -> tuple[float, int, int, int] | None:
    path = os.path.join(tmp, f"{tool}.out")
    env = {"BPFTRACE_MAP_KEYS_MAX": str(2 * keys), "BPFTRACE_MAX_MAP_KEYS": str(2 * keys)}
    if tool == "pytrace":
        env["PYTHONPATH"] = pytrace_path
    with B.Workload(cpu=0) as w:
        t = B.Tracer(tool, SCRIPT, params=[str(w.pid)], env=env, stdout_path=path).start()
        try:
            t.wait_attached(60)
            w.run(f"loop {keys}")
            time.sleep(0.2)
            dt = t.stop(timeout=120, resend_after=30)
            summary.note_resent(t)
            t.check_ok()
        except B.ToolFailed:
            t.kill()
            raise
    lines = 0
    with open(path) as f:
        for line in f:
            if line.startswith("@["):
                lines += 1
    size = os.path.getsize(path)
    os.unlink(path)
    if t.resent:
        return None  # the first SIGINT was ignored: the time is not the printing time
    return dt, lines, size, t.maxrss_kb


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 5
    keys = int(argv[argv.index("--keys") + 1]) if "--keys" in argv else 100_000
    pytrace_path = B.pytrace_tree(argv)
    summary = B.Summary()
    res: dict[str, list[tuple[float, int, int, int]]] = {tool: [] for tool in B.TOOLS}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="map-print-") as tmp:
        for r in range(runs + 2):  # up to 2 extra runs replace runs spoilt by an ignored SIGINT
            for tool in (B.TOOLS if r % 2 == 0 else tuple(reversed(B.TOOLS))):
                if tool in failed or len(res[tool]) >= runs:
                    continue
                try:
                    x = one_run(tool, keys, tmp, summary, pytrace_path)
                    if x is not None:
                        res[tool].append(x)
                except B.ToolFailed as exc:
                    failed[tool] = str(exc)
                    summary.fail(f"{tool} -e '{SCRIPT}' PID (BPFTRACE_MAP_KEYS_MAX={2 * keys}): {exc}")
    print(f"# printing a {keys:,}-key map at exit: SIGINT to exit, stdout to a file, {runs} runs, medians [min];"
          f" pytrace from {pytrace_path}")
    rows = []
    bt = B.median(x[0] for x in res["bpftrace"]) if res["bpftrace"] else None
    for tool in B.TOOLS:
        rs = res[tool]
        if not rs:
            rows.append([tool, "FAILED", "-", "-", "-", "-"])
            continue
        t = B.median(x[0] for x in rs)
        keys_seen = sorted({x[1] for x in rs})
        rows.append([tool, f"{t * 1000:.0f} [{min(x[0] for x in rs) * 1000:.0f}]",
                     ",".join(f"{k:,}" for k in keys_seen), f"{B.median(x[2] for x in rs) / 1e6:.2f}",
                     f"{B.median(x[3] for x in rs) / 1024:.0f}", "-" if tool == "bpftrace" else B.ratio(t, bt)])
    print(B.table(["tool", "exit ms", "@[ lines", "output MB", "RSS MiB", "ratio"], rows))
    for tool, text in failed.items():
        print(f"FAILED {tool}: {text}")
    pt = B.median(x[0] for x in res["pytrace"]) if res["pytrace"] else None
    summary.add(f"print a {keys // 1000}k-key map at exit", None if pt is None else pt * 1000,
                None if bt is None else bt * 1000, "ms", "< bpftrace", None if pt is None or bt is None else pt < bt)
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
