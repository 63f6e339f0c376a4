"""Running the stdlib's tools as a user does (``pytrace tool NAME [PID]``),
alone or side by side with Debian's bpftrace 0.17 running /usr/sbin/NAME.bt,
around one workload; and the workloads that need more than a call: a
process waiting for its cue (``Waiter``, so that its pid can be a tool's
parameter) and an interactive bash on a pty (``drive_bash``).  Used by
test_stdlib_tools_proc.py.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .difflib_pt import _ready, interrupt, pick, pinned, ready
from .harness import READY, Result


def _tool_cmd(tracer: str, name: str, params: list[str], form: str = "stdlib") -> list[str]:
    """``form``: what pytrace runs, the stdlib tool ("stdlib") or Debian's
    own bpftrace file ("debian", as bpftrace does)."""
    if tracer == "pytrace" and form == "debian":
        return [sys.executable, "-m", "pytrace", f"/usr/sbin/{name}.bt"]
    if tracer == "pytrace":
        return [sys.executable, "-m", "pytrace", "tool", name, *params]
    return ["bpftrace", f"/usr/sbin/{name}.bt"]


class _Drain(threading.Thread):
    """Reads a pipe to its end from the start: a tracer blocked writing to a
    full pipe (a whole machine's opens fill 64 KiB quickly) stops reading its
    perf buffer and loses the workload's events."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.data = b""

    def run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            self.data += chunk


def run_tools(name: str, workload: Callable[[], None] | None, *, params: list[str] | None = None,
              tracers: tuple[str, ...] = ("bpftrace", "pytrace"), settle: float = 0.3,
              timeout: float = 30, form: str = "stdlib") -> dict[str, Result]:
    """Start the tool under each tracer (pytrace: the stdlib tool, with
    ``params``, or with ``form="debian"`` Debian's file; bpftrace: Debian's
    /usr/sbin/NAME.bt), wait until all have
    attached, run ``workload`` once, SIGINT them and collect their output."""
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY)
    env.pop("BPFTRACE_STRLEN", None)
    procs = {t: subprocess.Popen(_tool_cmd(t, name, list(params or []), form), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env) for t in tracers}
    drains = {t: (_Drain(p.stdout.fileno()), _Drain(p.stderr.fileno()))  # type: ignore[union-attr]
              for t, p in procs.items()}
    for out, err in drains.values():
        out.start()
        err.start()
    deadline = time.monotonic() + timeout

    def started(t: str) -> bool:
        return _ready(drains[t][0].data, drains[t][1].data)
    while time.monotonic() < deadline and not all(started(t) or procs[t].poll() is not None for t in tracers):
        time.sleep(0.02)
    if all(started(t) for t in tracers) and workload is not None:
        workload()
    time.sleep(settle)
    interrupt(procs)
    results = {}
    for t, p in procs.items():
        # bpftrace 0.17 now and then misses the SIGINT (difflib_pt._finish): again every second.
        while True:
            try:
                p.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    p.kill()
                elif t == "bpftrace":
                    p.send_signal(signal.SIGINT)
        for d in drains[t]:
            d.join(timeout=10)
        results[t] = Result(p.returncode, drains[t][0].data.decode("utf-8", "replace"),
                            drains[t][1].data.decode("utf-8", "replace"))
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    for t, res in results.items():
        assert ready(res), f"{t} did not start:\n{res.stdout}\n{res.stderr}"
        assert res.rc == 0, f"{t} exited {res.rc}:\n{res.stdout}\n{res.stderr}"
        assert "Traceback" not in res.stderr, res.stderr
    return results


def both(name: str, workload: Callable[[], None] | None, want: str = "", **kw: object) -> tuple[str, str]:
    """bpftrace's Debian tool and pytrace's stdlib tool around one workload:
    their stdout without the Attaching line.  On a loaded machine bpftrace
    0.17 now and then prints none of the workload's events (its perf buffer
    is read late): when ``want`` is missing from either output, both run
    again, once, around a new run of the workload."""
    for _ in range(2):
        res = run_tools(name, workload, **kw)  # type: ignore[arg-type]
        if want in res["bpftrace"].body and want in res["pytrace"].body:
            break
    return res["bpftrace"].body, res["pytrace"].body


def ours(name: str, workload: Callable[[], None] | None, params: list[str] | None = None, **kw: object) -> str:
    """The stdlib tool alone around ``workload``: its stdout."""
    return run_tools(name, workload, params=params, tracers=("pytrace",), **kw)["pytrace"].body  # type: ignore[arg-type]


def picked(body: str, head: int, keep: Callable[[str], bool]) -> list[str]:
    """difflib_pt.pick without the empty lines that end the output: what
    the tools print at exit for their maps depends on which events were in
    flight when each was stopped (e.g. the test's own kill() of the other
    tracer in killsnoop)."""
    lines = pick(body, head, keep)
    while lines and lines[-1] == "":
        lines.pop()
    return lines


class Waiter:
    """A Python process started before the tool (so that its pid can be the
    tool's parameter) that runs ``code`` once it reads a byte on stdin; the
    workload is calling it."""

    def __init__(self, code: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.buffer.read(1)\n" + code],
                                     stdin=subprocess.PIPE, preexec_fn=pinned())
        self.pid = self.proc.pid
        self.comm = ""

    def __call__(self) -> None:
        self.comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"x")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=20) == 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def drive_bash(lines: list[bytes]) -> int:
    """Type ``lines`` into an interactive bash on a pty, each after its
    prompt (the last must end bash); return bash's pid once it has exited."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: bash
        try:
            os.sched_setaffinity(0, {0})
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"],
                      {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "ptprompt$ "})
        finally:
            os._exit(127)
    seen = b""
    try:
        for line in lines:
            deadline = time.monotonic() + 10
            while b"ptprompt$ " not in seen:
                assert time.monotonic() < deadline, f"no prompt in {seen!r}"
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    seen += os.read(fd, 4096)
            seen = seen.split(b"ptprompt$ ", 1)[1]
            os.write(fd, line + b"\n")
        deadline = time.monotonic() + 10
        done, status = 0, 0
        while not done:  # keep reading the terminal while bash exits
            assert time.monotonic() < deadline, f"bash did not exit: {seen!r}"
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    seen += os.read(fd, 4096)
                except OSError:  # EIO: bash has closed the terminal
                    pass
            done, status = os.waitpid(pid, os.WNOHANG)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid
