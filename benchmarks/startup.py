"""Start-up: wall time and peak RSS of a whole run, pytrace vs bpftrace 0.17.

    python benchmarks/startup.py [--runs N]        # as root

Two scripts, each run N times (default 11) per tool, tools alternating:

* ``BEGIN { exit(); }``: start to exit;
* ``tracepoint:syscalls:sys_enter_getpid { exit(); }`` while a background
  process calls getpid(2) every millisecond: start to exit, so it includes
  attaching, the first event and detaching (a perf-event tracepoint's close
  waits for an RCU grace period in both tools).

Wall time is measured from fork to reaping (``os.wait4``), peak RSS is the
``ru_maxrss`` wait4 returns: the larger of the tool process's own peak and
that of the children it reaped (pytrace compiles in a forked child);
"attach" is the time until the attach marker.
pytrace runs with its bytecode cached (as installed); the row "pytrace, no
.pyc" is this VM's default environment (PYTHONDONTWRITEBYTECODE=1), where
every start compiles pytrace's ~100 modules.
Figures are medians (min in brackets).  Target: pytrace no slower than bpftrace.
"""

from __future__ import annotations

import subprocess
import sys
import time

import _bench as B

SCRIPTS = {
    "BEGIN { exit(); }": "BEGIN { exit(); }",
    "sys_enter_getpid { exit(); }": "tracepoint:syscalls:sys_enter_getpid { exit(); }",
}
VARIANTS = (("pytrace", True), ("bpftrace", True), ("pytrace", False))


def label(tool: str, bytecode: bool) -> str:
    return tool if bytecode else f"{tool}, no .pyc"


def one_run(tool: str, bytecode: bool, script: str) -> tuple[float, float, int]:
    t = B.Tracer(tool, script, bytecode=bytecode).start()
    try:
        attach = t.wait_attached(60)
        wall = t.wait_exit(60)
    except B.ToolFailed:
        t.kill()
        raise
    t.check_ok()
    return wall, attach, t.maxrss_kb


def interpreter_baseline(runs: int) -> dict[str, float]:
    """Median wall time of the bare interpreter pytrace runs on (``-c pass``),
    with and without ``site`` (which here imports certifi through a
    sandbox .pth file): the floor under any Python tool's start-up."""
    out = {}
    for name, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                       ("python -S -c pass", [sys.executable, "-S", "-c", "pass"])):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(argv, check=True)
            times.append(time.perf_counter() - t)
        out[name] = B.median(times) or 0.0
    return out


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 11
    summary = B.Summary()
    B.warm_pytrace()
    # Something to trigger sys_enter_getpid at once: a getpid(2) every ms.
    bg = subprocess.Popen([sys.executable, "-S", "-c",
                           "import os, time\nwhile True:\n os.getpid(); time.sleep(0.001)"])
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    failures: dict[tuple[str, str], str] = {}
    try:
        for name, script in SCRIPTS.items():
            for i in range(runs):
                order = VARIANTS if i % 2 == 0 else tuple(reversed(VARIANTS))
                for tool, bytecode in order:
                    key = (name, label(tool, bytecode))
                    if key in failures:
                        continue
                    try:
                        results.setdefault(key, []).append(one_run(tool, bytecode, script))
                    except B.ToolFailed as exc:
                        failures[key] = str(exc)
                        summary.fail(f"{label(tool, bytecode)}: -e '{script}': {exc}")
    finally:
        bg.kill()
        bg.wait()

    print(f"# start-up, {runs} runs per tool, alternating; medians [min]; RSS = peak ru_maxrss")
    rows = []
    for name in SCRIPTS:
        base = results.get((name, "bpftrace"), [])
        bt_wall = B.median(r[0] for r in base)
        bt_rss = B.median(r[2] for r in base)
        for tool, bytecode in VARIANTS:
            key = (name, label(tool, bytecode))
            rs = results.get(key, [])
            if key in failures and not rs:
                rows.append([name, key[1], "FAILED", "-", "-", "-", "-", "-"])
                continue
            wall = B.median(r[0] for r in rs)
            attach = B.median(r[1] for r in rs)
            rss = B.median(r[2] for r in rs)
            rows.append([name, key[1], f"{wall * 1000:.0f} [{min(r[0] for r in rs) * 1000:.0f}]",
                         f"{attach * 1000:.0f}", f"{rss / 1024:.1f}",
                         "-" if tool == "bpftrace" else B.ratio(wall, bt_wall),
                         "-" if tool == "bpftrace" else B.ratio(rss, bt_rss),
                         "" if key not in failures else "some runs FAILED"])
        pt = results.get((name, "pytrace"), [])
        if pt and base:
            w = B.median(r[0] for r in pt)
            summary.add(f"start-up wall, {name}", w * 1000, bt_wall * 1000, "ms", "<= bpftrace", w <= bt_wall)
            summary.add(f"peak RSS, {name}", B.median(r[2] for r in pt) / 1024, bt_rss / 1024, "MiB",
                        "(none)", None)
    print(B.table(["script", "tool", "wall ms", "attach ms", "RSS MiB", "wall ratio", "RSS ratio", "note"], rows,
                  left=2))
    for key, text in failures.items():
        print(f"FAILED {key[1]} on '{key[0]}': {text}")
    for name, wall in interpreter_baseline(runs).items():
        print(f"interpreter alone, {name}: {wall * 1000:.0f} ms (median of {runs})")
        summary.add(f"interpreter alone, {name}", wall * 1000, None, "ms", "(info)", None)
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
