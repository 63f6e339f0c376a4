"""Probe listing: ``-l`` wall time and line counts, pytrace vs bpftrace 0.17.

    python benchmarks/listing.py [--runs N]        # as root

Each listing runs N times (default 7) per tool, tools alternating, output
to a pipe that is read to the end; wall time is fork to reaping.  The
listings compared:

* ``-l`` (everything: what shell completion loads);
* ``-l 'tracepoint:syscalls:*'`` (a provider and a glob);
* ``-l 'uprobe:LIBC:*'`` (every function of libc, from its ELF symbol tables);
* ``-lv 'tracepoint:sched:*'`` (arguments from tracefs format files).

The line counts differ where the tools list different things (bpftrace 0.17
lists 'software:*:' and no raw tracepoints, interval or profile units;
pytrace lists each software event, raw tracepoint and iterator); the table
shows both.  Figures are medians (min in brackets).  Target: the full list
under 0.5 s (fast enough to feed shell completion).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import _bench as B

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
LISTINGS = [("-l", []), ("-l 'tracepoint:syscalls:*'", ["tracepoint:syscalls:*"]),
            ("-l 'uprobe:libc:*'", [f"uprobe:{LIBC}:*"]), ("-lv 'tracepoint:sched:*'", ["tracepoint:sched:*"])]


def one_run(tool: str, args: list[str], verbose: bool) -> tuple[float, int]:
    argv = B.tool_argv(tool) + (["-lv"] if verbose else ["-l"]) + args
    env = B.tool_env(tool)
    env.pop(B.MARK, None)
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise B.ToolFailed(f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}")
    return wall, len(p.stdout.splitlines())


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 7
    summary = B.Summary()
    B.warm_pytrace()
    rows = []
    for label, args in LISTINGS:
        verbose = label.startswith("-lv")
        res: dict[str, list[tuple[float, int]]] = {tool: [] for tool in B.TOOLS}
        failed: dict[str, str] = {}
        for r in range(runs):
            for tool in (B.TOOLS if r % 2 == 0 else tuple(reversed(B.TOOLS))):
                if tool in failed:
                    continue
                try:
                    res[tool].append(one_run(tool, args, verbose))
                except (B.ToolFailed, subprocess.TimeoutExpired) as exc:
                    failed[tool] = str(exc)
                    summary.fail(f"{tool} {label}: {exc}")
        fig = {tool: B.median(w for w, _ in res[tool]) for tool in B.TOOLS}
        for tool in B.TOOLS:
            rs = res[tool]
            rows.append([label, tool,
                         "FAILED" if not rs else f"{fig[tool] * 1000:.0f} [{min(w for w, _ in rs) * 1000:.0f}]",
                         rs[0][1] if rs else "-",
                         B.ratio(fig["pytrace"], fig["bpftrace"]) if tool == "pytrace" else ""])
        pt, bt = fig["pytrace"], fig["bpftrace"]
        if label == "-l":
            summary.add("list every probe (-l)", None if pt is None else pt * 1000,
                        None if bt is None else bt * 1000, "ms", "< 500 ms", None if pt is None else pt < 0.5)
        else:
            summary.add(f"list {label}", None if pt is None else pt * 1000, None if bt is None else bt * 1000,
                        "ms", "(info)", None)
    print(f"# probe listings, {runs} runs per tool, alternating; medians [min]; libc = {os.path.realpath(LIBC)}")
    print(B.table(["listing", "tool", "wall ms", "lines", "ratio"], rows, left=2))
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
