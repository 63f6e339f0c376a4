"""REPL start-up: from starting ``pytrace repl`` on a terminal to a usable prompt.

    python benchmarks/repl_startup.py [--runs N]        # as root

Each run starts the REPL on a pseudo-terminal (80x24), times it from fork
to the moment ``pytrace> `` appears on the terminal, then presses Ctrl-D
and reaps it.  "first keystroke" is the time from sending a Tab after the
prompt to the terminal's next output (completion answering while the probe
lists still load in the background).  bpftrace has no REPL: its start-up
of ``BEGIN { exit(); }`` is shown for scale.  Medians [min] of N runs
(default 11).  Target: the prompt within 0.5 s.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import _bench as B

PROMPT = b"pytrace>"  # its trailing space may be drawn as a cursor move


def _read_until(fd: int, needle: bytes, timeout: float) -> tuple[bytes, float | None]:
    buf = b""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        if needle in buf:
            return buf, time.perf_counter()
    return buf, None


def one_run(tree: str) -> tuple[float, float]:
    argv = B.pytrace_argv() + ["repl"]
    env = B.tool_env("pytrace", {"PYTHONPATH": tree})
    env.pop(B.MARK, None)
    env["HOME"] = "/tmp/pytrace-bench-home"
    os.makedirs(env["HOME"], exist_ok=True)
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    try:
        _, seen = _read_until(fd, PROMPT, 30)
        if seen is None:
            raise B.ToolFailed("no prompt within 30 s")
        time.sleep(0.05)
        t1 = time.perf_counter()
        os.write(fd, b"tracepoint:sch\t")
        _, answered = _read_until(fd, b"sched", 10)
        os.write(fd, b"\x03\x04")
        # Read to the end: a REPL whose terminal is not read blocks writing.
        _read_until(fd, b"\0never\0", 10)
        return seen - t0, (answered - t1) if answered else float("nan")
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)


def main(argv: list[str]) -> None:
    B.check_environment()
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 11
    summary = B.Summary()
    tree = B.pytrace_tree(argv)
    prompts, keys, bt = [], [], []
    for _ in range(runs):
        try:
            p, k = one_run(tree)
        except B.ToolFailed as exc:
            summary.fail(f"pytrace repl: {exc}")
            break
        prompts.append(p)
        keys.append(k)
        t0 = time.perf_counter()
        subprocess.run(["bpftrace", "-e", "BEGIN { exit(); }"], capture_output=True, timeout=60)
        bt.append(time.perf_counter() - t0)
    med = B.median(prompts)
    print(f"# REPL start-up on a pty, {len(prompts)} runs; medians [min]")
    rows = [["pytrace repl: prompt", f"{med * 1000:.0f} [{min(prompts) * 1000:.0f}]" if prompts else "FAILED"],
            ["pytrace repl: first completion", f"{B.median(keys) * 1000:.0f}" if keys else "-"],
            ["bpftrace BEGIN { exit(); } (scale)", f"{B.median(bt) * 1000:.0f}" if bt else "-"]]
    print(B.table(["what", "ms"], rows))
    summary.add("REPL start-up to the prompt", None if med is None else med * 1000, None, "ms", "< 500 ms",
                None if med is None else med < 0.5)
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
